"""Reading data folders: encodings, separators, Parquet, problems located by file and line."""

from __future__ import annotations

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
    target.mkdir()
    (target / "old.csv").write_text("old")
    with atomic_directory(target) as tmp:
        (tmp / "new.csv").write_text("new")
    assert [p.name for p in tmp_path.iterdir()] == ["out"]
    assert [p.name for p in target.iterdir()] == ["new.csv"]


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
