"""Reading data folders: encodings, separators, Parquet, problems located by file and line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pandas as pd
import pytest

from pipelines.io import (
    DataError,
    atomic_directory,
    load_data_folder,
    read_table,
    write_data_folder,
)


def _write_folder(folder, data, **options):
    folder.mkdir(parents=True, exist_ok=True)
    for stem, frame in data.tables().items():
        frame.to_csv(folder / f"{stem}.csv", index=False, **options)
    return folder


def test_gbk_file_from_chinese_excel_reads_back(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_bytes("线索编号,行业\nL1,零售\nL2,软件\n".encode("gbk"))
    frame = read_table(path)
    assert frame.columns.tolist() == ["线索编号", "行业"]
    assert frame["行业"].tolist() == ["零售", "软件"]


def test_utf8_with_bom_and_semicolons(tmp_path):
    path = tmp_path / "reps.csv"
    path.write_bytes("\ufeffrep_id;name\nR1;Zoë\n".encode())
    frame = read_table(path)
    assert frame.columns.tolist() == ["rep_id", "name"]
    assert frame.loc[0, "name"] == "Zoë"


def test_unknown_encoding_says_how_to_fix(tmp_path):
    path = tmp_path / "leads.csv"
    path.write_bytes(b"lead_id\n\xff\xfe\xfa\n")
    with pytest.raises(DataError, match="save it as 'CSV UTF-8'"):
        read_table(path)


def test_canonical_folder_loads_in_utf8_and_gbk(tmp_path, tiny):
    for encoding in ("utf-8", "utf-8-sig", "gbk"):
        data = tiny.__class__(**{k: v.copy() for k, v in tiny.tables().items()})
        data.reps.loc[0, "name"] = "王芳"
        loaded = load_data_folder(_write_folder(tmp_path / encoding, data, encoding=encoding))
        assert loaded.data.reps.loc[0, "name"] == "王芳"
        assert len(loaded.data.assignments) == 4


def test_parquet_tables_are_accepted(tmp_path, tiny):
    folder = tmp_path / "pq"
    folder.mkdir()
    for stem, frame in tiny.tables().items():
        frame.to_parquet(folder / f"{stem}.parquet")
    assert len(load_data_folder(folder).data.leads) == 5


def test_problems_name_the_file_and_line(tmp_path, tiny):
    tiny.leads.loc[2, "expected_value"] = "lots"
    tiny.assignments.loc[1, "rep_id"] = "R99"
    with pytest.raises(DataError) as info:
        load_data_folder(_write_folder(tmp_path / "bad", tiny))
    problems = info.value.problems
    assert problems[["file", "line", "column"]].values.tolist() == [
        ["assignments.csv", 3, "rep_id"],
        ["leads.csv", 4, "expected_value"],
    ]


def test_missing_tables_are_named(tmp_path, tiny):
    folder = _write_folder(tmp_path / "part", tiny)
    (folder / "assignments.csv").unlink()
    with pytest.raises(DataError, match=r"missing assignments\.csv"):
        load_data_folder(folder)


def test_atomic_directory_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError), atomic_directory(target) as tmp:
        (tmp / "half.csv").write_text("a,b\n")
        raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_atomic_directory_replaces_an_existing_output_whole(tmp_path):
    target = tmp_path / "out"
    target.mkdir()  # a plain folder, as written before outputs were versioned
    (target / "old.csv").write_text("old")
    for content in ("new", "newer"):
        with atomic_directory(target) as tmp:
            (tmp / "new.csv").write_text(content)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".versions", "out"]
    assert [p.name for p in target.iterdir()] == ["new.csv"]
    assert (target / "new.csv").read_text() == "newer"
    assert [target.resolve()] == list((tmp_path / ".versions").iterdir())


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork to die mid-publish")
def test_a_run_killed_at_any_point_of_publishing_leaves_a_whole_output(tmp_path):
    """The run dies (os._exit, as under kill -9) at each file-system change of the publish in
    turn: the output is always the old one or the new one, and the next run cleans up."""
    target = tmp_path / "out" / "2025-05-06"
    with atomic_directory(target) as tmp:
        (tmp / "assignments.csv").write_text("old")
    for step in range(1, 20):
        pid = os.fork()
        if pid == 0:
            _die_at_change(step)
            with atomic_directory(target) as tmp:
                (tmp / "assignments.csv").write_text("new")
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert (target / "assignments.csv").read_text() in ("old", "new"), step
        if os.waitstatus_to_exitcode(status) == 0:
            break
        with atomic_directory(target) as tmp:  # the next night: it publishes and cleans up
            (tmp / "assignments.csv").write_text("old")
        assert sorted(p.name for p in target.parent.iterdir()) == [".versions", "2025-05-06"]
        assert len(list((target.parent / ".versions").iterdir())) == 1
    else:
        raise AssertionError("the publish never finished")
    assert step > 2, step  # it did die at the changes before the last


def _die_at_change(step: int) -> None:
    """Make the step-th file-system change of this (forked) process exit on the spot."""
    calls = iter(range(1, 1000))

    def dying(change):
        def wrapper(*args, **kwargs):
            if next(calls) == step:
                os._exit(9)
            return change(*args, **kwargs)

        return wrapper

    for module, name in [
        (os, "rename"),
        (os, "replace"),
        (os, "symlink"),
        (os, "unlink"),
        (os, "rmdir"),
        (shutil, "rmtree"),
    ]:
        setattr(module, name, dying(getattr(module, name)))


def test_leftovers_of_crashed_runs_are_cleaned(tmp_path):
    target = tmp_path / "2025-05-06"
    with atomic_directory(target) as tmp:
        (tmp / "assignments.csv").write_text("day")
    dead = _dead_pid()
    stale = [
        tmp_path / ".versions" / f"2025-05-06.{dead}.abc123",  # a staging folder
        tmp_path / ".2025-05-06.x1y2z3w4",  # the two-rename layout's staging folder
        tmp_path / f".2025-05-06.old-{dead}",  # ... and its old copy
    ]
    for folder in stale:
        folder.mkdir()
        (folder / "assignments.csv").write_text("half")
    (tmp_path / f".2025-05-06.{dead}.link").symlink_to(".versions")
    other_run = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    busy = tmp_path / ".versions" / f"2025-05-06.{other_run.pid}.inprogress"
    busy.mkdir()  # another live run's staging folder is not touched
    try:
        with atomic_directory(target) as tmp:
            (tmp / "assignments.csv").write_text("day again")
    finally:
        other_run.kill()
        other_run.wait()
    assert sorted(p.name for p in tmp_path.iterdir()) == [".versions", "2025-05-06"]
    assert sorted(p.name for p in (tmp_path / ".versions").iterdir()) == sorted(
        [target.resolve().name, busy.name]
    )
    assert (target / "assignments.csv").read_text() == "day again"


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_written_folder_round_trips(tmp_path, tiny):
    loaded = load_data_folder(_write_folder(tmp_path / "in", tiny))
    write_data_folder(loaded.data, tmp_path / "copy")
    again = load_data_folder(tmp_path / "copy")
    pd.testing.assert_frame_equal(again.data.leads, loaded.data.leads)
    pd.testing.assert_frame_equal(again.data.assignments, loaded.data.assignments)


def test_lines_match_the_file_across_multiline_cells_and_blank_lines(tmp_path, tiny):
    folder = _write_folder(tmp_path / "crm", tiny)
    # A quoted note that spans three lines, and blank lines that readers skip.
    (folder / "leads.csv").write_text(
        "lead_id,created_at,source,industry,region,product,expected_value,x_note\n"
        'L1,2024-03-01 09:00,web,retail,EU,basic,1000,"called twice,\nno answer\nretry"\n'
        "\n"
        "L2,2024-03-01 10:30,event,software,EU,pro,5000.5,\n"
        "L3,2024/3/2,web,retail,APAC,basic,800,\n"
        "\n"
        "\n"
        "L4,2024-03-04,referral,,EU,pro,lots,\n"
        "L5,2024-03-04 16:00:00,web,retail,EU,basic,1200,\n",
        encoding="utf-8",
    )
    with pytest.raises(DataError) as info:
        load_data_folder(folder)
    problems = info.value.problems
    assert problems[["file", "line", "column", "value"]].values.tolist() == [
        ["leads.csv", 10, "expected_value", "lots"]
    ]
    lines = (folder / "leads.csv").read_text(encoding="utf-8").split("\n")
    assert lines[10 - 1].startswith("L4,")


def test_parquet_problems_name_rows(tmp_path, tiny):
    folder = tmp_path / "pq"
    folder.mkdir()
    tiny.leads.loc[2, "expected_value"] = "lots"
    for stem, frame in tiny.tables().items():
        frame.to_parquet(folder / f"{stem}.parquet")
    with pytest.raises(DataError) as info:
        load_data_folder(folder)
    assert info.value.problems[["file", "line", "column"]].values.tolist() == [
        ["leads.parquet", 3, "expected_value"]
    ]
