"""The evaluation library's contracts: the schemas of the backtest's files (checked when written
and again when read back), and a library that stays pure (no orchestration, tracking or file
I/O)."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pytest

import evaluation
from evaluation.off_policy.results import OffPolicyEstimates, OffPolicyResult
from evaluation.off_policy_backtest import OffPolicyBacktest
from evaluation.policies import POLICIES
from evaluation.policy_table import TABLE_COLUMNS, policy_table
from evaluation.schemas import FairnessCurve, PolicyRuns, PolicyTable, SoftViolations
from pipelines.backtest import read_backtest_csv, write_off_policy_outputs
from pipelines.outputs import write_csv
from tests.test_backtest_parts import figures_with_wins, off_policy_case

ROOT = Path(__file__).resolve().parents[1]
# pandera raises SchemaErrors (all problems at once) for a column outside a strict schema
SCHEMA_ERRORS = (pa.errors.SchemaError, pa.errors.SchemaErrors)


def table() -> pd.DataFrame:
    """A policy table as the replay makes it (round-robin 100 expected wins, the oracle 130)."""
    figures = figures_with_wins()
    figures[["soft_violations", "placed"]] = [2, 40]
    figures[["gini", "ramp_top_tier_share", "max_top_tier_share"]] = [0.1, 0.15, 0.3]
    return policy_table(figures)


def runs() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "policy": ["leadmatch", "leadmatch", "oracle"],
            "run_at": pd.to_datetime(["2026-01-05", "2026-01-06", "2026-01-05"]),
            "pending": [12, 4, 12],
            "placed": [10, 4, 12],
            "hard_violations": 0,
            "soft_violations": [1, 0, 0],
            "unreachable_violations": 0,
            "max_share_deviation": [0.25, 0.1, 0.0],
            "status": ["optimal", "optimal", "empty"],
        }
    )


def estimates(identified: bool) -> OffPolicyResult:
    """60 leads the history gave to A (a third won); the target picks A when ``identified``,
    else B, which the history never chose."""
    return off_policy_case("A" if identified else "B").result


# --- what a frame must hold ---------------------------------------------------------------------


def shuffled(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.iloc[::-1].reset_index(drop=True)


def with_value(frame: pd.DataFrame, row: int, column: str, value: object) -> pd.DataFrame:
    out = frame.copy()
    out.loc[row, column] = value
    return out


BAD_FRAMES = [
    (PolicyTable, table, shuffled, "the policies are those of POLICIES, in that order"),
    (PolicyTable, table, lambda f: f.drop(columns="gini"), "column 'gini' not in dataframe"),
    (
        PolicyTable,
        table,
        lambda f: with_value(f, 2, "price_of_fairness", 1.5),
        "only leadmatch and the oracle have a price of fairness",
    ),
    (
        PolicyTable,
        table,
        lambda f: with_value(f, 0, "lift_vs_round_robin", 0.1),
        "round_robin is the base: no lift over itself",
    ),
    (PolicyTable, table, lambda f: with_value(f, 3, "gini", 1.5), "less_than_or_equal_to"),
    (PolicyRuns, runs, lambda f: with_value(f, 0, "placed", 13), "no more leads than it had"),
    (
        PolicyRuns,
        runs,
        lambda f: with_value(f, 1, "run_at", pd.Timestamp("2026-01-05")),
        "a policy runs once a day",
    ),
    (PolicyRuns, runs, lambda f: f.assign(seconds=1.5), "column 'seconds' not in DataFrameSchema"),
    (
        OffPolicyEstimates,
        lambda: estimates(False).estimates,
        lambda f: with_value(f, 4, "value", 0.31),
        "an estimate that is not identified shows no number",
    ),
    (
        OffPolicyEstimates,
        lambda: estimates(True).estimates,
        lambda f: with_value(f, 0, "identified", False),
        "the historical policy's own value is always identified",
    ),
    (
        OffPolicyEstimates,
        lambda: estimates(True).estimates,
        lambda f: with_value(f, 1, "ci_low", 9.0),
        "an interval's low end is not above its high end",
    ),
]


@pytest.mark.parametrize(("model", "good", "change", "message"), BAD_FRAMES)
def test_a_frame_that_breaks_its_contract_is_refused(model, good, change, message):
    frame = good()
    model.validate(frame)
    with pytest.raises(SCHEMA_ERRORS, match=message):
        model.validate(change(frame))


def test_the_fairness_curve_runs_from_the_narrowest_band_to_none():
    curve = pd.DataFrame(
        {
            "policy": ["leadmatch_band_0.1", "leadmatch", "leadmatch_no_fairness"],
            "band": [0.1, 0.2, np.inf],
            "expected_wins": [118.0, 120.0, 125.0],
            "max_value_share_deviation": [0.1, 0.2, 0.8],
            "soft_violations": [0, 2, 9],
        }
    )
    FairnessCurve.validate(curve)
    with pytest.raises(SCHEMA_ERRORS, match="from the narrowest to none"):
        FairnessCurve.validate(shuffled(curve))


def test_an_unavoidable_part_larger_than_its_violation_is_refused():
    violations = pd.DataFrame(
        {
            "constraint": ["new_rep_quota", "value_share_max"],
            "rep_id": [None, "R1"],
            "size": [2.5, 0.01],
            "unit": ["top-tier leads", "value"],
            "unavoidable": [2.0, 0.02],
            "avoidable": [True, False],
            "policy": "leadmatch",
            "run_at": pd.Timestamp("2026-01-05"),
        }
    )
    with pytest.raises(SCHEMA_ERRORS, match="no larger than it"):
        SoftViolations.validate(violations)


# --- the files, written and read back -----------------------------------------------------------


@pytest.mark.parametrize(("name", "frame"), [("backtest.csv", table), ("runs.csv", runs)])
def test_a_written_file_reads_back_as_the_frame_it_was(tmp_path, name, frame):
    expected = frame()
    write_csv(expected, tmp_path / name)
    got = read_backtest_csv(tmp_path / name)
    assert got["policy"].tolist() == expected["policy"].tolist()
    pd.testing.assert_frame_equal(got, expected, check_dtype=False, atol=1e-4)


@pytest.mark.parametrize("identified", [True, False])
def test_off_policy_estimates_read_back_with_no_number_where_not_identified(tmp_path, identified):
    result = estimates(identified)
    backtest = OffPolicyBacktest(result, ["signal: ..."], n_fallback=0, n_folds=2)
    written = write_off_policy_outputs(tmp_path, backtest)
    assert [p.name for p in written] == ["off_policy.csv", "overlap.json"]
    got = read_backtest_csv(tmp_path / "off_policy.csv").set_index("estimator")
    assert got["identified"].tolist() == [True, *[identified] * 5]
    assert got.loc["logged", "value"] == pytest.approx(1 / 3, abs=1e-4)
    assert np.isnan(got.loc["dr", "value"]) != identified
    assert got["note"].fillna("").tolist() == result.estimates["note"].tolist()


def test_a_file_edited_to_show_a_number_that_is_not_identified_is_refused(tmp_path):
    backtest = OffPolicyBacktest(estimates(False), [], n_fallback=0, n_folds=2)
    write_off_policy_outputs(tmp_path, backtest)
    path = tmp_path / "off_policy.csv"
    lines = path.read_text(encoding="utf-8-sig").splitlines()
    # the dr row: estimator,value,... with an empty value; put a number in
    row = next(i for i, line in enumerate(lines) if line.startswith("dr,"))
    lines[row] = lines[row].replace("dr,", "dr,0.4", 1)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8-sig")
    with pytest.raises(SCHEMA_ERRORS, match="not identified shows no number"):
        read_backtest_csv(path)


def test_every_file_the_backtest_writes_has_a_schema():
    from evaluation.schemas import BACKTEST_FILES

    assert set(BACKTEST_FILES) == {
        "backtest.csv",
        "runs.csv",
        "fairness_curve.csv",
        "rep_shares.csv",
        "soft_violations.csv",
        "off_policy.csv",
    }
    assert list(PolicyTable.to_schema().columns) == TABLE_COLUMNS
    assert table()["policy"].tolist() == list(POLICIES)


# --- a pure library -----------------------------------------------------------------------------

EDGE_MODULES = ("prefect", "mlflow", "pipelines")
FILE_CALLS = {
    "open",
    "read_csv",
    "read_parquet",
    "to_csv",
    "to_parquet",
    "write_text",
    "write_bytes",
    "read_text",
    "savefig",
}


def evaluation_modules() -> list[str]:
    return sorted(m.name for m in pkgutil.walk_packages(evaluation.__path__, prefix="evaluation."))


def test_the_evaluation_library_loads_no_orchestration_tracking_or_pipelines_code():
    modules = evaluation_modules()
    assert "evaluation.replay" in modules and "evaluation.off_policy.runner" in modules
    code = (
        "import importlib, sys\n"
        f"for name in {modules!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {EDGE_MODULES!r}))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == "[]"


def test_the_evaluation_library_reads_and_writes_no_files():
    calls = []
    for path in sorted((ROOT / "evaluation").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call):
                name = getattr(node.func, "attr", getattr(node.func, "id", None))
                if name in FILE_CALLS:
                    calls.append(f"{path.relative_to(ROOT)}:{node.lineno} {name}")
    assert calls == []
