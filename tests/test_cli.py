"""The command line: exit codes, readable summaries, and no tracebacks for a user's mistakes."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from pipelines.cli import app

runner = CliRunner()


def _folder(tmp_path, data):
    tmp_path.mkdir(parents=True, exist_ok=True)
    for stem, frame in data.tables().items():
        frame.to_csv(tmp_path / f"{stem}.csv", index=False)
    return tmp_path


def test_validate_good_folder_prints_summary_and_exits_0(tmp_path, tiny):
    result = runner.invoke(app, ["validate", str(_folder(tmp_path, tiny))])
    assert result.exit_code == 0, result.output
    assert "win rate of closed" in result.output
    assert "0.500" in result.output
    assert "OK" in result.output


@pytest.mark.parametrize(
    ("break_data", "message"),
    [
        (lambda d: d.leads.loc.__setitem__((0, "created_at"), "yesterday"), "leads.csv"),
        (lambda d: d.assignments.loc.__setitem__((0, "status"), "maybe"), "assignments.csv"),
        (lambda d: d.reps.__setitem__("active", "false"), "no active reps"),
    ],
)
def test_validate_bad_data_exits_2_without_traceback(tmp_path, tiny, break_data, message):
    break_data(tiny)
    result = runner.invoke(app, ["validate", str(_folder(tmp_path, tiny))])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)


def test_validate_missing_folder_is_a_clear_error(tmp_path):
    result = runner.invoke(app, ["validate", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no such folder" in result.output


def test_simulate_writes_a_valid_folder_and_is_deterministic(tmp_path):
    for name in ("a", "b"):
        result = runner.invoke(
            app, ["simulate", "--scenario", "small", "--seed", "3", "--out", str(tmp_path / name)]
        )
        assert result.exit_code == 0, result.output
    for stem in ("reps", "leads", "assignments", "availability"):
        assert (tmp_path / "a" / f"{stem}.csv").read_bytes() == (
            tmp_path / "b" / f"{stem}.csv"
        ).read_bytes()
    assert runner.invoke(app, ["validate", str(tmp_path / "a")]).exit_code == 0


def test_simulate_unknown_scenario_lists_the_choices(tmp_path):
    result = runner.invoke(app, ["simulate", "--scenario", "huge", "--out", str(tmp_path / "x")])
    assert result.exit_code == 2
    assert "choose one of default, null, null_small, small" in result.output
    assert not (tmp_path / "x").exists()


def test_validate_maven_sample_through_the_builtin_mapping(maven_folder):
    result = runner.invoke(app, ["validate", str(maven_folder), "--mapping", "maven"])
    assert result.exit_code == 0, result.output
    assert "GTXPro" in result.output
    assert "8800" in result.output


def test_validate_with_an_unknown_mapping_is_a_clear_error(maven_folder):
    result = runner.invoke(app, ["validate", str(maven_folder), "--mapping", "salesfarce"])
    assert result.exit_code == 2
    assert "maven" in result.output
