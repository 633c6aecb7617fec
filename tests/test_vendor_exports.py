"""The shipped mappings on small exports written the way each CRM writes them.

Each export is a folder of CSV files with the vendor's own headers, values and date forms; it is
read through `pipelines.io` exactly as `leadmatch validate DIR --mapping FILE` reads it.
"""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from features.adapters import ColumnMapping, required_files
from pipelines.cli import app
from pipelines.io import DataError, load_data_folder

MAPPINGS = Path(__file__).parents[1] / "pipelines" / "mappings"
runner = CliRunner()


def write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text.lstrip("\n"), encoding="utf-8")


# --- HubSpot -----------------------------------------------------------------------------------

HUBSPOT_DEALS = """
Record ID,Deal Name,Deal Stage,Create Date,Close Date,Amount,Deal owner,Pipeline,Deal Type
18001,Acme renewal,closedwon,2024-03-01 09:00,2024-03-20 14:31,12000,Ann Lee,Sales Pipeline,existingbusiness
18002,Beta new seats,closedlost,2024-03-02 10:15,2024-03-25 11:00,3000,Raj Patel,Sales Pipeline,newbusiness
18003,Gamma pilot,appointmentscheduled,2024-03-05 16:45,2024-03-31 00:00,,Ann Lee,Sales Pipeline,newbusiness
18004,Delta expansion,contractsent,2024-03-06 08:30,2024-04-30 00:00,8000,Raj Patel,Sales Pipeline,existingbusiness
18005,TEST deal please ignore,closedwon,2024-03-06 09:00,2024-03-06 09:05,1,Ann Lee,Sales Pipeline,newbusiness
18006,Partner referral,Closed Won,2024-03-07 11:00,2024-03-28 10:00,5000,,Sales Pipeline,newbusiness
18007,Onboarding support,closedwon,2024-03-08 12:00,2024-03-09 12:00,500,Ann Lee,Customer Success,existingbusiness
18008,Epsilon inbound,qualifiedtobuy,2024-03-09 09:30,2024-04-15 00:00,,,Sales Pipeline,newbusiness
"""


def test_the_hubspot_mapping_reads_a_deals_export(tmp_path):
    write(tmp_path, "deals.csv", HUBSPOT_DEALS)
    mapping = MAPPINGS / "hubspot-deals.yaml"
    assert required_files(ColumnMapping.from_yaml(mapping.read_text())) == ["deals.csv"]
    loaded = load_data_folder(tmp_path, mapping)
    data = loaded.data
    # The test deal and the other pipeline's deal are dropped, and counted.
    assert data.leads["lead_id"].tolist() == ["18001", "18002", "18003", "18004", "18006", "18008"]
    assert {
        "filters: 1 row of deals.csv dropped where Deal Name matches '(?i)\\btest\\b' "
        "(test records)",
        "filters: 1 row of deals.csv dropped where Pipeline is not one of 'Sales Pipeline', "
        "'default' (other pipelines)",
    } <= set(loaded.repairs)
    asg = data.assignments.set_index("lead_id")
    # 18008 has no owner and is open: an unassigned lead. 18006 was won with no owner: an
    # outcome with no rep.
    assert asg["status"].to_dict() == {
        "18001": "won",
        "18002": "lost",
        "18003": "open",
        "18004": "open",
        "18006": "won",
    }
    assert pd.isna(asg.loc["18006", "rep_id"])
    assert asg.loc["18001", "closed_at"] == pd.Timestamp("2024-03-20 14:31")
    assert asg.loc["18001", "assigned_at"] == pd.Timestamp("2024-03-01 09:00")
    assert asg[["closed_at"]].loc[["18003", "18004"]].isna().all().all()
    # An appointment may be reclaimed after the SLA; a contract sent stays with its owner.
    assert asg["reclaimable"].to_dict() == {
        "18001": True,
        "18002": True,
        "18003": True,
        "18004": False,
        "18006": True,
    }
    assert data.reps["rep_id"].tolist() == ["Ann Lee", "Raj Patel"]
    assert data.leads.set_index("lead_id").loc["18004", "x_deal_type"] == "existingbusiness"


def test_validate_prints_the_hubspot_export_its_repairs_and_its_label(tmp_path):
    write(tmp_path, "deals.csv", HUBSPOT_DEALS)
    result = runner.invoke(
        app, ["validate", str(tmp_path), "--mapping", str(MAPPINGS / "hubspot-deals.yaml")]
    )
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    assert "Target: won within 90 days of assignment (features.conversion_window_days)" in text
    assert "wins outside the window: 0 of 2 wins (0.0%)" in text
    assert (
        "training base rate: 50.0% of 2 labelled assignments won within 90 days, against a win "
        "rate of 66.7% of closed leads (the figure above), because 2 open leads younger than 90 "
        "days are left out until their window ends; 1 outcome with no rep counts in the win rate "
        "of closed leads but is not a training pair (the model's win chances are those of a lead "
        "that reached an owner)"
    ) in text
    assert "train would stop: too few outcomes: 2 assignments with a label" in text


# --- Zoho --------------------------------------------------------------------------------------

ZOHO_HEADER = (
    "Record Id,Lead Owner,Company,First Name,Last Name,Email,Lead Source,Lead Status,Industry,"
    "No. of Employees,Created Time,Modified Time\n"
)
ZOHO_LEADS = (
    ZOHO_HEADER
    + """\
4876000000411,Mei Chen,Hillcrest Foods,Mary,Ames,mary@hillcrest.com,Web Download,Contacted,Food & Beverage,120,14/03/2024 09:30,20/03/2024 11:00
4876000000412,Mei Chen,,Spam,Bot,spam@mailinator.com,,Junk Lead,,,15/03/2024 10:00,15/03/2024 10:05
4876000000413,Ravi Kumar,Orbit Labs,Tom,Reed,tom@orbitlabs.io,Trade Show,Lost Lead,Technology,40,02/03/2024 14:00,29/03/2024 16:20
4876000000414,Ravi Kumar,Test Co,Tess,Ting,tess@example.com,Web Download,Not Contacted,Technology,5,16/03/2024 08:00,16/03/2024 08:00
4876000000415,Mei Chen,Lumen Ltd,Ana,Ruiz,ana@lumen.co,Chat,Not Contacted,Retail,15,01/04/2024 09:15,01/04/2024 09:15
"""
)
ZOHO_CONVERTED = (
    ZOHO_HEADER
    + """\
4876000000401,Ravi Kumar,Northwind,Joe,Park,joe@northwind.com,Partner,Contacted,Retail,300,01/03/2024 09:00,05/03/2024 10:00
4876000000402,Mei Chen,Contoso,Liz,Wong,liz@contoso.com,Advertisement,Contacted,Technology,1000,04/03/2024 15:30,12/03/2024 09:00
"""
)
ZOHO_DEALS = """\
Record Id,Deal Owner,Deal Name,Amount,Closing Date,Stage,Lead Source,Created Time,Lead Id
4876000000511,Ravi Kumar,Northwind - 300 seats,"45,000.00",28/03/2024,Closed Won,Partner,05/03/2024 10:00,4876000000401
4876000000512,Mei Chen,Contoso - pilot,"8,000.00",30/04/2024,Negotiation/Review,Advertisement,12/03/2024 09:00,4876000000402
4876000000513,Mei Chen,Direct deal,"2,000.00",10/04/2024,Closed Lost,,20/03/2024 12:00,
"""


def zoho_export(folder: Path, us_locale: bool = False) -> Path:
    texts = {
        "leads.csv": ZOHO_LEADS,
        "converted_leads.csv": ZOHO_CONVERTED,
        "deals.csv": ZOHO_DEALS,
    }
    for name, text in texts.items():
        write(folder, name, _us_dates(text) if us_locale else text)
    return folder


def _us_dates(text: str) -> str:
    """The same export from a user with a US locale: "Mar 14, 2024 09:30 AM", "Mar 28, 2024"."""

    def us(match: re.Match) -> str:
        day, month, year, time = match.group(1), match.group(2), match.group(3), match.group(4)
        when = pd.Timestamp(f"{year}-{month}-{day} {time or ''}")
        date = f"{when:%b} {when.day}, {when.year}"
        shown = f"{date} {when:%I:%M %p}" if time else date
        return f'"{shown}"'

    return re.sub(r"(\d\d)/(\d\d)/(\d{4})(?: (\d\d:\d\d))?", us, text)


def test_the_zoho_mapping_joins_leads_with_their_deals(tmp_path):
    loaded = load_data_folder(zoho_export(tmp_path), MAPPINGS / "zoho-leads-deals.yaml")
    data = loaded.data
    # Open leads first, then converted ones; the junk lead and the test record are dropped.
    assert data.leads["lead_id"].tolist() == [
        "4876000000411",
        "4876000000413",
        "4876000000415",
        "4876000000401",
        "4876000000402",
    ]
    assert data.leads.set_index("lead_id").loc["4876000000411", "created_at"] == pd.Timestamp(
        "2024-03-14 09:30"
    )
    asg = data.assignments.set_index("lead_id")
    assert asg["status"].to_dict() == {
        "4876000000411": "open",
        "4876000000413": "lost",
        "4876000000415": "open",
        "4876000000401": "won",
        "4876000000402": "open",
    }
    # A lost lead closes at its last change; a converted lead at its deal's closing date.
    assert asg.loc["4876000000413", "closed_at"] == pd.Timestamp("2024-03-29 16:20")
    assert asg.loc["4876000000401", "closed_at"] == pd.Timestamp("2024-03-28")
    assert asg.loc["4876000000401", "deal_value"] == 45000.0
    assert asg.loc["4876000000401", "rep_id"] == "Ravi Kumar"
    # Only leads nobody has worked yet may be reclaimed: a contacted lead, a deal in
    # negotiation stay.
    assert asg.loc[asg["status"] == "open", "reclaimable"].to_dict() == {
        "4876000000411": False,
        "4876000000415": True,
        "4876000000402": False,
    }
    assert {
        "filters: 1 row of leads.csv dropped where Lead Status is one of 'Junk Lead' (junk leads)",
        "filters: 1 row of leads.csv dropped where Email matches '(?i)@example\\.(com|org)$' "
        "(test records)",
        "leads: 5 rows from 2 files (leads.csv: 3, converted_leads.csv: 2)",
        "assignments: 2 of 5 rows of leads.csv + converted_leads.csv matched a row of deals.csv "
        "on 'Record Id' = 'Lead Id' (status, closed_at, deal_value from deals.csv); not used: "
        "1 row of deals.csv with no match",
    } <= set(loaded.repairs)
    assert data.reps["rep_id"].tolist() == ["Mei Chen", "Ravi Kumar"]


def test_the_zoho_mapping_reads_a_us_locale_export_without_date_formats(tmp_path):
    spec = yaml.safe_load((MAPPINGS / "zoho-leads-deals.yaml").read_text())
    del spec["tables"]["leads"]["date_format"]
    del spec["tables"]["assignments"]["date_format"]
    mapping = tmp_path / "zoho-us.yaml"
    mapping.write_text(yaml.safe_dump(spec))
    export = zoho_export(tmp_path / "export", us_locale=True)
    assert '"Mar 14, 2024 09:30 AM"' in (export / "leads.csv").read_text()
    data = load_data_folder(export, mapping).data
    asg = data.assignments.set_index("lead_id")
    assert asg.loc["4876000000413", "closed_at"] == pd.Timestamp("2024-03-29 16:20")
    assert asg.loc["4876000000401", "closed_at"] == pd.Timestamp("2024-03-28")
    assert data.leads["created_at"].max() == pd.Timestamp("2024-04-01 09:15")


def test_a_bad_value_in_a_mapped_export_is_named_by_its_file_line_and_column(tmp_path):
    export = zoho_export(tmp_path)
    deals = (export / "deals.csv").read_text().replace('"45,000.00"', "forty-five")
    (export / "deals.csv").write_text(deals)
    converted = (export / "converted_leads.csv").read_text().replace(",1000,", ",lots,")
    (export / "converted_leads.csv").write_text(converted)
    with pytest.raises(DataError) as err:
        load_data_folder(export, MAPPINGS / "zoho-leads-deals.yaml")
    problems = err.value.problems.astype({"line": "object"})
    assert problems.to_dict("records") == [
        {
            "file": "deals.csv",
            "line": 2,
            "column": "Amount (assignments.deal_value)",
            "value": "forty-five",
            "expected": "a number",
        },
        {
            "file": "converted_leads.csv",
            "line": 3,
            "column": "No. of Employees (leads.company_size)",
            "value": "lots",
            "expected": "a whole number",
        },
    ]


def test_a_missing_mapping_column_is_one_message_not_a_row_error_each(tmp_path):
    export = zoho_export(tmp_path)
    spec = yaml.safe_load((MAPPINGS / "zoho-leads-deals.yaml").read_text())
    del spec["tables"]["assignments"]["join"][0]["columns"]["deal_value"]
    mapping = tmp_path / "no-amount.yaml"
    mapping.write_text(yaml.safe_dump(spec))
    result = runner.invoke(app, ["validate", str(export), "--mapping", str(mapping)])
    assert result.exit_code == 2
    assert " ".join(result.output.split()).endswith(
        "assignments.deal_value is missing on all 1 won row: map it, or add "
        "`defaults: {deal_value: 0}`"
    )
    assert "Traceback" not in result.output


# --- Salesforce (the example mapping) -----------------------------------------------------------


def test_the_salesforce_example_drops_internal_users_and_marks_reclaimable_stages(tmp_path):
    write(
        tmp_path,
        "opportunities.csv",
        """
Opportunity ID,Created Date,Lead Source,Industry,Sales Region,Product Name,Account ID,Employees,Amount,Stage,Close Date,Opportunity Owner,Owner Role,Owner Region,Type
006A,01/02/2024,Web,Hi-Tech,Europe,Pro,001X,"1,200","$12,000.00",Closed Won,01/03/2024,Ann Lee,AE EMEA,EMEA,New Business
006B,15/02/2024,,Healthcare,Americas,Basic,001Y,40,900,Qualification,30/06/2024,Raj Patel,AE AMER,AMER,Renewal
006C,20/02/2024,Partner,,Europe,Pro,001X,,5000,Negotiation/Review,29/06/2024,Ann Lee,AE EMEA,EMEA,New Business
006D,21/02/2024,Web,Hi-Tech,Europe,Pro,001Z,10,100,Closed Won,22/02/2024,Integration User,System,EMEA,New Business
""",
    )
    loaded = load_data_folder(tmp_path, MAPPINGS / "example.yaml")
    asg = loaded.data.assignments.set_index("lead_id")
    assert asg.index.tolist() == ["006A", "006B", "006C"]
    assert asg.loc[["006B", "006C"], "reclaimable"].tolist() == [True, False]
    assert (
        "filters: 1 row of opportunities.csv dropped where Opportunity Owner is one of "
        "'Integration User', 'Admin User' (internal users)"
    ) in loaded.repairs


def test_a_column_missing_on_nearly_every_row_is_one_sentence_with_the_mapping_fix(tmp_path):
    # Nine of ten won deals have no Amount: the adapter cannot see it (one has a value); the
    # contract check reports the column once, with the mapping's fix, not nine row errors.
    rows = [
        f"{18100 + i},Deal {i},closedwon,2024-03-0{1 + i % 9} 09:00,2024-03-20 10:00,"
        f"{'900' if i == 0 else ''},Ann Lee,Sales Pipeline,newbusiness"
        for i in range(10)
    ]
    write(tmp_path, "deals.csv", HUBSPOT_DEALS.strip().splitlines()[0] + "\n" + "\n".join(rows))
    with pytest.raises(DataError) as err:
        load_data_folder(tmp_path, MAPPINGS / "hubspot-deals.yaml")
    assert str(err.value).splitlines()[1:] == [
        "  - deal_value is missing on 9 of 10 won rows: map it, or add `defaults: {deal_value: 0}`"
    ]
    assert err.value.problems is None
