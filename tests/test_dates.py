"""Dates and times as real CRM exports write them: zones, day/month order, impossible times.

Every export here is written by hand in a vendor's real column names and date forms (a
Salesforce report, a HubSpot API export, a Chinese Excel export in GBK) and read the way a user
reads it: `leadmatch validate DIR [--mapping FILE] [--config FILE]`.
"""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from features.timestamps import DAY_FIRST, MONTH_FIRST, parse_timestamps
from pipelines.cli import app
from pipelines.io import DataError, load_data_folder
from pipelines.recommend import load_state

runner = CliRunner()

REPS = (
    "rep_id,name,team,region,hire_date,skills,daily_capacity,active\n"
    "R1,Ana,north,EU,2020-01-06,retail,5,true\n"
    "R2,Bo,north,EU,2023-06-01,retail,4,true\n"
)
LEADS_HEADER = "lead_id,created_at,source,industry,region,product,expected_value\n"
ASSIGNMENTS_HEADER = "lead_id,rep_id,assigned_at,first_contact_at,status,closed_at,deal_value\n"


def canonical(folder, created, closed=None, *, assigned=None, status=None, deal=None):
    """A canonical folder: lead i created at created[i], assigned then to R1/R2 in turn (or at
    assigned[i]), closed at closed[i] (won, 100) or open; every date cell written as given."""
    n = len(created)
    assigned = assigned or created
    closed = closed or [""] * n
    status = status or ["won" if c else "open" for c in closed]
    deal = deal or ["100" if s == "won" else "" for s in status]
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reps.csv").write_text(REPS, encoding="utf-8")
    (folder / "leads.csv").write_text(
        LEADS_HEADER
        + "".join(f"L{i + 1},{c},web,retail,EU,basic,1000\n" for i, c in enumerate(created)),
        encoding="utf-8",
    )
    (folder / "assignments.csv").write_text(
        ASSIGNMENTS_HEADER
        + "".join(
            f"L{i + 1},R{i % 2 + 1},{assigned[i]},,{status[i]},{closed[i]},{deal[i]}\n"
            for i in range(n)
        ),
        encoding="utf-8",
    )
    return folder


def validate(*args: str):
    return runner.invoke(app, ["validate", *map(str, args)])


# --- the forms one column may hold -------------------------------------------------------------

FORMS_READ = [
    ("2024-03-01", "UTC", "2024-03-01 00:00"),
    ("2024-03-01 14:30", "Asia/Shanghai", "2024-03-01 14:30"),  # no zone: already on the clock
    ("2024-03-01T09:00:00Z", "UTC", "2024-03-01 09:00"),
    ("2024-03-01T09:00:00.000Z", "Asia/Shanghai", "2024-03-01 17:00"),
    ("2024-03-01 17:00+08:00", "UTC", "2024-03-01 09:00"),
    ("2024-03-01T17:00:00+0800", "Europe/Berlin", "2024-03-01 10:00"),
    ("2024-03-01 09:00:00 UTC", "Asia/Shanghai", "2024-03-01 17:00"),
    ("2024/3/1 9:00", "UTC", "2024-03-01 09:00"),
    ("2024年3月1日", "UTC", "2024-03-01 00:00"),
    ("2024年3月1日 9:05", "UTC", "2024-03-01 09:05"),
    ("45352", "UTC", "2024-03-01 00:00"),
    ("45352.5", "UTC", "2024-03-01 12:00"),
    ("1 Mar 2024", "UTC", "2024-03-01 00:00"),
    ("01-Mar-2024 14:05", "UTC", "2024-03-01 14:05"),
    ("March 1, 2024 2:05 PM", "UTC", "2024-03-01 14:05"),
    ("Fri, 01 Mar 2024 09:00:00 +0000", "Asia/Shanghai", "2024-03-01 17:00"),
    ("15/03/2024 14:05", "UTC", "2024-03-15 14:05"),
    ("3/15/2024 12:30 AM", "UTC", "2024-03-15 00:30"),
    ("15.03.2024", "UTC", "2024-03-15 00:00"),
]


@pytest.mark.parametrize(("text", "zone", "expected"), FORMS_READ)
def test_each_form_is_read_onto_the_teams_clock(text, zone, expected):
    parsed = parse_timestamps(pd.Series([text]), timezone=zone)
    assert parsed.values.iloc[0] == pd.Timestamp(expected)
    assert not parsed.bad.any()


@pytest.mark.parametrize(
    "text",
    ["2024", "2024-03", "2024-02-30", "9999-01-01", "03/15/24", "2024-03-01 9:00 PST", "soon"],
)
def test_what_is_not_a_timestamp_is_bad_never_guessed(text):
    parsed = parse_timestamps(pd.Series([text, "2024-03-01"]))
    assert parsed.bad.tolist() == [True, False]
    assert pd.isna(parsed.values.iloc[0])


def test_a_column_may_mix_zoned_and_naive_values():
    parsed = parse_timestamps(
        pd.Series(["2024-03-01T01:00:00Z", "2024-03-01 09:30", None, "2024-03-10T07:00:00Z"]),
        timezone="America/New_York",
    )
    # 01:00 UTC is 20:00 the evening before in New York (UTC-5); after the switch to summer
    # time on 10 March, 07:00 UTC is 03:00 (UTC-4).
    assert parsed.values.tolist()[:2] == [
        pd.Timestamp("2024-02-29 20:00"),
        pd.Timestamp("2024-03-01 09:30"),
    ]
    assert pd.isna(parsed.values.iloc[2]) and not parsed.bad.iloc[2]
    assert parsed.values.iloc[3] == pd.Timestamp("2024-03-10 03:00")


# --- day first or month first: once per column -------------------------------------------------


def test_one_day_above_12_makes_the_whole_column_day_first():
    parsed = parse_timestamps(pd.Series(["03/04/2024", "05/06/2024 10:00", "15/03/2024"]))
    assert parsed.order == DAY_FIRST
    assert parsed.values.dt.strftime("%Y-%m-%d").tolist() == [
        "2024-04-03",
        "2024-06-05",
        "2024-03-15",
    ]


def test_one_second_number_above_12_makes_it_month_first():
    parsed = parse_timestamps(pd.Series(["03/04/2024", "12/31/2024"]))
    assert parsed.order == MONTH_FIRST
    assert parsed.values.iloc[0] == pd.Timestamp("2024-03-04")


def test_a_column_that_cannot_decide_is_left_unread_not_guessed():
    parsed = parse_timestamps(pd.Series(["03/04/2024", "05/06/2024", "2024-03-20"]))
    assert parsed.ambiguous and parsed.order is None
    assert parsed.values.isna().tolist() == [True, True, False]
    assert not parsed.bad.any()  # refused as a column, not row by row
    same = parse_timestamps(pd.Series(["01/01/2024", "05/05/2024"]))
    assert not same.ambiguous  # the order changes nothing


def test_canonical_dates_read_day_first_from_one_deciding_value(tmp_path):
    folder = canonical(
        tmp_path / "crm",
        ["03/04/2024 09:00", "05/04/2024 10:00", "15/04/2024"],
        ["20/04/2024", "", ""],
    )
    loaded = load_data_folder(folder)
    assert loaded.data.leads["created_at"].tolist() == [
        pd.Timestamp("2024-04-03 09:00"),
        pd.Timestamp("2024-04-05 10:00"),
        pd.Timestamp("2024-04-15"),
    ]
    result = validate(folder)
    assert result.exit_code == 0, result.output


def test_canonical_dates_without_a_deciding_value_are_refused(tmp_path):
    folder = canonical(tmp_path / "crm", ["03/04/2024 09:00", "05/04/2024 10:00", "01/02/2024"])
    result = validate(folder)
    assert result.exit_code == 2
    assert (
        "ambiguous day/month order in leads.csv created_at: set date_format in the mapping, or "
        "write the dates as YYYY-MM-DD"
    ) in result.stderr
    assert "ambiguous day/month order in assignments.csv assigned_at" in result.stderr
    assert "Traceback" not in result.output


def test_a_column_mixing_both_orders_is_refused_naming_a_line_of_each(tmp_path):
    folder = canonical(tmp_path / "crm", ["2024-03-01", "15/03/2024", "03/01/2024", "03/16/2024"])
    with pytest.raises(DataError) as info:
        load_data_folder(folder)
    assert (
        "leads.csv created_at mixes day-first and month-first dates: line 3 has 15/03/2024 "
        "(day first), line 5 has 03/16/2024 (month first); write every date of the column in "
        "the same order"
    ) in str(info.value)


# --- vendor exports through a mapping ----------------------------------------------------------

SALESFORCE_MAPPING = """\
name: salesforce-opportunities
tables:
  leads:
    file: report.csv
    columns: {lead_id: Opportunity ID, created_at: Created Date, source: Lead Source,
              industry: Industry, region: Region, product: Product Name}
  assignments:
    file: report.csv
    columns: {lead_id: Opportunity ID, rep_id: Opportunity Owner, assigned_at: Created Date,
              status: Stage, closed_at: Close Date, deal_value: Amount}
    values:
      status: {Closed Won: won, Closed Lost: lost, '*': open}
  reps:
    file: report.csv
    distinct: true
    columns: {rep_id: Opportunity Owner}
"""


def salesforce_report(folder, created, closed):
    """A Salesforce "Opportunities" report as exported with a UK locale: day-first dates, the
    created date-time to the minute, the close date a date (on open deals the expected one)."""
    folder.mkdir(parents=True, exist_ok=True)
    stages = ["Closed Won", "Closed Lost", "Prospecting", "Closed Won"]
    rows = [
        f"00Q{i:05d},{c},Web,Retail,EMEA,Basic,{['Ana Lee', 'Bo Chen'][i % 2]},"
        f'{stages[i % 4]},{closed[i]},"£1,200.00"\n'
        for i, c in enumerate(created)
    ]
    (folder / "report.csv").write_text(
        "Opportunity ID,Created Date,Lead Source,Industry,Region,Product Name,"
        "Opportunity Owner,Stage,Close Date,Amount\n" + "".join(rows),
        encoding="utf-8-sig",
    )
    (folder / "mapping.yaml").write_text(SALESFORCE_MAPPING, encoding="utf-8")
    return folder


def test_a_salesforce_report_with_day_first_dates_is_read_day_first(tmp_path):
    folder = salesforce_report(
        tmp_path / "sf",
        ["15/03/2024 14:05", "04/03/2024 09:30", "05/03/2024 11:00", "06/03/2024 16:45"],
        # The close dates alone cannot tell the order: the created dates of the file do.
        ["01/04/2024", "02/04/2024", "10/04/2024", "11/04/2024"],
    )
    result = validate(folder, "--mapping", folder / "mapping.yaml")
    assert result.exit_code == 0, result.output
    data = load_data_folder(folder, folder / "mapping.yaml").data
    assert data.leads["created_at"].tolist()[:2] == [
        pd.Timestamp("2024-03-15 14:05"),
        pd.Timestamp("2024-03-04 09:30"),
    ]
    assert data.assignments["closed_at"].tolist()[:2] == [
        pd.Timestamp("2024-04-01"),
        pd.Timestamp("2024-04-02"),
    ]


def test_a_salesforce_report_whose_dates_cannot_decide_is_refused(tmp_path):
    folder = salesforce_report(
        tmp_path / "sf",
        ["03/03/2024 14:05", "04/03/2024 09:30", "05/03/2024 11:00", "06/03/2024 16:45"],
        ["01/04/2024", "02/04/2024", "10/04/2024", "11/04/2024"],
    )
    result = validate(folder, "--mapping", folder / "mapping.yaml")
    assert result.exit_code == 2
    assert (
        "ambiguous day/month order in report.csv created_at: set date_format in the mapping\n"
    ) in result.stderr


HUBSPOT_MAPPING = """\
name: hubspot-deals
tables:
  leads:
    file: deals.csv
    columns: {lead_id: Record ID, created_at: Create Date, source: Original Source Type,
              industry: Industry, region: Country/Region, product: Pipeline}
  assignments:
    file: deals.csv
    columns: {lead_id: Record ID, rep_id: Deal owner, assigned_at: Create Date,
              status: Deal Stage, closed_at: Close Date, deal_value: Amount}
    values:
      status: {closedwon: won, closedlost: lost, '*': open}
  reps:
    file: deals.csv
    distinct: true
    columns: {rep_id: Deal owner}
"""


def test_a_hubspot_api_export_in_utc_is_read_on_the_teams_clock(tmp_path):
    folder = tmp_path / "hs"
    folder.mkdir()
    (folder / "deals.csv").write_text(
        "Record ID,Create Date,Original Source Type,Industry,Country/Region,Pipeline,"
        "Deal owner,Deal Stage,Close Date,Amount\n"
        "1001,2024-03-01T01:00:00.000Z,ORGANIC_SEARCH,RETAIL,US,default,ana@x.com,closedwon,"
        "2024-03-20T16:00:00.000Z,1200\n"
        "1002,2024-03-12T13:30:00.000Z,PAID_SOCIAL,RETAIL,US,default,bo@x.com,closedlost,"
        "2024-03-15T15:00:00Z,\n"
        "1003,2024-03-14T09:00:00.000Z,DIRECT_TRAFFIC,SOFTWARE,US,default,ana@x.com,"
        "appointmentscheduled,,\n",
        encoding="utf-8",
    )
    (folder / "mapping.yaml").write_text(HUBSPOT_MAPPING, encoding="utf-8")
    config = tmp_path / "leadmatch.yaml"
    config.write_text("timezone: America/New_York\n", encoding="utf-8")
    result = validate(folder, "--mapping", folder / "mapping.yaml", "--config", config)
    assert result.exit_code == 0, result.output
    assert "2024-02-29 .. 2024-03-14" in result.output  # the first lead: 20:00 the evening before
    data = load_data_folder(folder, folder / "mapping.yaml", timezone="America/New_York").data
    assert data.leads["created_at"].tolist() == [
        pd.Timestamp("2024-02-29 20:00"),
        pd.Timestamp("2024-03-12 09:30"),  # summer time from 10 March: UTC-4
        pd.Timestamp("2024-03-14 05:00"),
    ]
    assert data.assignments["closed_at"].iloc[0] == pd.Timestamp("2024-03-20 12:00")


CHINESE_MAPPING = """\
name: 线索导出
tables:
  leads:
    file: 线索导出.csv
    columns: {lead_id: 线索编号, created_at: 创建时间, source: 来源, industry: 行业,
              region: 区域, product: 产品}
  assignments:
    file: 线索导出.csv
    columns: {lead_id: 线索编号, rep_id: 负责人, assigned_at: 分配时间, status: 阶段,
              closed_at: 成交日期, deal_value: 成交金额}
    values:
      status: {赢单: won, 输单: lost, 跟进中: open}
  reps:
    file: 线索导出.csv
    distinct: true
    columns: {rep_id: 负责人}
"""


def test_a_chinese_excel_export_in_gbk_is_read(tmp_path):
    folder = tmp_path / "cn"
    folder.mkdir()
    (folder / "线索导出.csv").write_bytes(
        (
            "线索编号,创建时间,来源,行业,区域,产品,负责人,分配时间,阶段,成交日期,成交金额\n"
            "XS001,2024/3/1 9:00,官网,零售,华东,基础版,王芳,2024/3/1 9:30,赢单,2024/3/20,12000\n"
            "XS002,2024/3/2 14:15,展会,软件,华南,专业版,李伟,2024/3/2 15:00,输单,2024/3/9,\n"
            "XS003,2024年3月5日 10:00,官网,零售,华东,基础版,王芳,2024年3月5日 10:20,跟进中,,\n"
        ).encode("gbk")
    )
    (folder / "mapping.yaml").write_text(CHINESE_MAPPING, encoding="utf-8")
    config = tmp_path / "leadmatch.yaml"
    config.write_text("timezone: Asia/Shanghai\n", encoding="utf-8")
    result = validate(folder, "--mapping", folder / "mapping.yaml", "--config", config)
    assert result.exit_code == 0, result.output
    data = load_data_folder(folder, folder / "mapping.yaml", timezone="Asia/Shanghai").data
    assert data.assignments["assigned_at"].tolist() == [
        pd.Timestamp("2024-03-01 09:30"),
        pd.Timestamp("2024-03-02 15:00"),
        pd.Timestamp("2024-03-05 10:20"),
    ]


# --- zones through every loader ----------------------------------------------------------------


def test_a_zoned_canonical_export_round_trips_on_the_teams_clock(tmp_path):
    folder = canonical(
        tmp_path / "crm",
        ["2024-03-01T01:00:00Z", "2024-03-01 17:00+08:00", "2024-03-02T09:30:00+0800"],
        ["2024-03-20T04:00:00.000Z", "", ""],
        assigned=["2024-03-01T01:05:00Z", "2024-03-01 17:10", "2024-03-02 09:45"],
    )
    config = tmp_path / "leadmatch.yaml"
    config.write_text("timezone: Asia/Shanghai\n", encoding="utf-8")
    result = validate(folder, "--config", config)
    assert result.exit_code == 0, result.output
    loaded = load_data_folder(folder, timezone="Asia/Shanghai").data
    assert loaded.leads["created_at"].tolist() == [
        pd.Timestamp("2024-03-01 09:00"),
        pd.Timestamp("2024-03-01 17:00"),
        pd.Timestamp("2024-03-02 09:30"),
    ]
    assert loaded.assignments["assigned_at"].tolist() == [
        pd.Timestamp("2024-03-01 09:05"),
        pd.Timestamp("2024-03-01 17:10"),  # no zone: already on the team's clock
        pd.Timestamp("2024-03-02 09:45"),
    ]
    assert loaded.assignments["closed_at"].iloc[0] == pd.Timestamp("2024-03-20 12:00")
    in_utc = load_data_folder(folder).data
    assert in_utc.leads["created_at"].iloc[1] == pd.Timestamp("2024-03-01 09:00")
    # The nightly run reads the folder on the same clock: the 17:00 lead exists on 1 March.
    state = load_state.fn(folder, None, pd.Timestamp("2024-03-02"), "Asia/Shanghai")
    assert state.leads["lead_id"].tolist() == ["L1", "L2"]


# --- impossible times --------------------------------------------------------------------------


def twelve_days(closed_last: str) -> dict:
    created = [f"2024-03-{d:02d} 10:00" for d in range(1, 13)]
    closed = ["2024-03-15", "2024-03-16", "2024-03-17", "2024-03-18", "2024-03-19"]
    return {"created": created, "closed": closed + [closed_last] + [""] * 6}


def test_a_close_years_after_the_export_is_refused_by_validate(tmp_path):
    days = twelve_days("2031-03-20")
    folder = canonical(tmp_path / "crm", days["created"], days["closed"])
    result = validate(folder)
    assert result.exit_code == 2
    assert "assignments.csv" in result.stderr
    with pytest.raises(DataError) as info:
        load_data_folder(folder)
    assert info.value.problems.values.tolist() == [
        [
            "assignments.csv",
            7,
            "closed_at",
            "2031-03-20",
            "a date no later than the export's end (closed_at 2031-03-20 is more than 31 days "
            "after the export's last date, 2024-03-19)",
        ]
    ]


def test_a_lead_created_after_its_close_is_refused(tmp_path):
    days = twelve_days("2024-03-02")  # lead 6 is created on 6 March
    folder = canonical(tmp_path / "crm", days["created"], days["closed"])
    with pytest.raises(DataError) as info:
        load_data_folder(folder)
    assert info.value.problems[["file", "line", "column", "expected"]].values.tolist() == [
        [
            "assignments.csv",
            7,
            "closed_at",
            "closed_at on or after the lead's created_at (closed_at 2024-03-02 is before "
            "created_at 2024-03-06 10:00, leads.csv line 7)",
        ]
    ]


def test_an_assignment_before_its_lead_on_the_same_day_is_repaired_and_said(tmp_path):
    days = twelve_days("2024-03-20")
    assigned = list(days["created"])
    assigned[0] = "2024-03-01"  # a date without its time
    folder = canonical(tmp_path / "crm", days["created"], days["closed"], assigned=assigned)
    result = validate(folder)
    assert result.exit_code == 0, result.output
    assert "Repaired while loading:" in result.output
    assert "assignments.assigned_at: 1 row earlier than the lead's created_at" in result.output
    assigned[0] = "2024-02-28"
    folder = canonical(tmp_path / "crm2", days["created"], days["closed"], assigned=assigned)
    result = validate(folder)
    assert result.exit_code == 2


def test_a_value_missing_on_every_won_row_is_one_line(tmp_path):
    days = twelve_days("2024-03-20")
    folder = canonical(tmp_path / "crm", days["created"], days["closed"], deal=[""] * 12)
    result = validate(folder)
    assert result.exit_code == 2
    assert "deal_value is missing on all 6 won rows: fill it in assignments.csv" in result.stderr
    assert "problems found" not in result.stderr  # no table of 6 rows besides


# --- a huge cell -------------------------------------------------------------------------------


def test_a_multi_megabyte_cell_is_refused_quickly_and_shown_cut(tmp_path):
    # 2 MB of digits: about eight minutes with the former per-value parser (it was quadratic
    # in the length of a cell), well under a second now; the message shows 80 characters.
    days = twelve_days("2024-03-20")
    created = list(days["created"])
    created[3] = "9" * 2_000_000
    folder = canonical(tmp_path / "crm", created, days["closed"], assigned=days["created"])
    leads = (folder / "leads.csv").read_text(encoding="utf-8")
    (folder / "leads.csv").write_text(
        leads.replace(
            "L2,2024-03-02 10:00,web,retail,EU,basic,1000",
            "L2,2024-03-02 10:00,web,retail,EU,basic," + "1" * 2_000_000 + "x",
        ),
        encoding="utf-8",
    )
    with pytest.raises(DataError) as info:
        load_data_folder(folder)
    problems = info.value.problems
    assert problems[["line", "column"]].values.tolist() == [
        [3, "expected_value"],
        [5, "created_at"],
    ]
    assert problems["value"].tolist() == ["1" * 80 + "…", "9" * 80 + "…"]
    result = validate(folder)
    assert result.exit_code == 2
    assert len(result.output) < 5_000
