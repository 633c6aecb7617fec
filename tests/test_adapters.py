"""Adapters: a raw export with its own column names in, valid canonical tables and a report out."""

from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from features.adapters import (
    BUILTIN_MAPPINGS,
    ColumnMapping,
    MappingError,
    adapt,
    adapt_maven,
    apply_mapping,
    required_files,
    resolve_mapping,
)
from features.schemas import validate_crm

REPO = Path(__file__).parents[1]
MAVEN = REPO.parent / "shared" / "data" / "maven-crm-sales-opportunities"


def opportunities() -> pd.DataFrame:
    """A CRM report as the loader reads it: every cell text, empty cells "" (not NA)."""
    return pd.DataFrame(
        {
            "Id": ["O1", "O2", "O3", "O4", "O5"],
            "Created": ["2024-03-01", "2024-03-01", "2024-03-03", "2024-03-04", "2024-03-04"],
            "Owner": ["ana", "ana", "bo", "", "bo"],
            "Stage": ["Closed Won", "Closed Lost", "Negotiation", "New", "Closed Won"],
            "Amount": ["$1,200.50", "300", "", "50", "2,000"],
            "Close": ["2024-03-10", "2024-03-05", "2024-04-30", "", "2024-03-09"],
            "Industry": ["Tech", "retail", "", "Tech", "Mining"],
        }
    )


def spec(**tables: dict) -> dict:
    """A mapping of ``opportunities`` with leads, assignments and reps; override any table."""
    base = {
        "leads": {
            "file": "opportunities.csv",
            "columns": {"lead_id": "Id", "created_at": "Created", "industry": "Industry"},
        },
        "assignments": {
            "file": "opportunities.csv",
            "columns": {
                "lead_id": "Id",
                "rep_id": "Owner",
                "status": "Stage",
                "closed_at": "Close",
                "deal_value": "Amount",
            },
            "values": {"status": {"Closed Won": "won", "Closed Lost": "lost", "*": "open"}},
        },
        "reps": {"file": "opportunities.csv", "distinct": True, "columns": {"rep_id": "Owner"}},
    }
    return {"tables": base | tables}


def run(mapping: dict, raw: pd.DataFrame | None = None):
    raw = opportunities() if raw is None else raw
    return apply_mapping({"opportunities": raw}, ColumnMapping.parse(mapping))


# --- the generic mapping ---------------------------------------------------------------------


def test_mapping_renames_recodes_and_derives_a_valid_crm():
    result = run(spec())
    data = validate_crm(result.data)

    assert data.leads["lead_id"].tolist() == ["O1", "O2", "O3", "O4", "O5"]
    assert data.leads["industry"].tolist()[:2] == ["Tech", "retail"]
    # O4 has no owner: an unassigned lead, not an assignment row.
    asg = data.assignments.set_index("lead_id")
    assert asg.index.tolist() == ["O1", "O2", "O3", "O5"]
    assert asg["status"].tolist() == ["won", "lost", "open", "won"]
    # assigned_at comes from the lead; an open deal's "Close" is a forecast, so it is dropped.
    assert asg.loc["O3", "assigned_at"] == pd.Timestamp("2024-03-03")
    assert pd.isna(asg.loc["O3", "closed_at"])
    assert asg["deal_value"].tolist()[:2] == [1200.5, 300.0]
    assert asg.loc["O5", "deal_value"] == 2000.0
    # Reps: the distinct owners, with a name, hire date, capacity and active flag derived.
    reps = data.reps.set_index("rep_id")
    assert reps.index.tolist() == ["ana", "bo"]
    assert reps["name"].tolist() == ["ana", "bo"]
    assert reps["hire_date"].tolist() == [pd.Timestamp("2024-03-01"), pd.Timestamp("2024-03-03")]
    assert reps["active"].all()
    assert {
        "assignments: 1 row of opportunities.csv without a rep_id: those leads are unassigned",
        "assignments.assigned_at: not in the export, set to the lead's created_at for 4 rows",
        "assignments.closed_at: cleared for 1 open row "
        "(an expected close date is not a close date)",
        "reps: one row per distinct rep_id of opportunities.csv (2 reps from 5 rows)",
        "assignments.deal_value: thousands separators or currency signs removed from 2 values",
        "leads: source, region, product not in the export, left empty",
    } <= set(result.repairs)


def test_the_input_frames_are_not_changed():
    raw = opportunities()
    run(spec(), raw)
    pd.testing.assert_frame_equal(raw, opportunities())


@pytest.mark.parametrize(
    ("recode", "industries", "report"),
    [
        (
            {"Tech": "technology"},
            ["technology", "retail", None, "technology", "Mining"],
            [
                "leads.industry recoded: 'Tech' -> 'technology' (2)",
                "leads.industry: 2 values not in the mapping kept as they are: "
                "'retail' (1), 'Mining' (1)",
            ],
        ),
        (
            {"Tech": "technology", "*": "other"},
            ["technology", "other", None, "technology", "other"],
            [
                "leads.industry recoded: 'Tech' -> 'technology' (2), 'retail' -> 'other' (1), "
                "'Mining' -> 'other' (1)"
            ],
        ),
        (
            {"Mining": None, "retail": "retail"},
            ["Tech", "retail", None, "Tech", None],
            [
                "leads.industry recoded: 'retail' -> 'retail' (1), 'Mining' -> None (1)",
                "leads.industry: 1 value not in the mapping kept as they are: 'Tech' (2)",
            ],
        ),
    ],
)
def test_values_recode_listed_values_and_star_stands_for_the_rest(recode, industries, report):
    mapping = spec()
    mapping["tables"]["leads"]["values"] = {"industry": recode}
    result = run(mapping)
    got = result.data.leads["industry"].astype(object).where(result.data.leads["industry"].notna())
    assert got.replace({pd.NA: None}).tolist() == industries
    assert [r for r in result.repairs if r.startswith("leads.industry")] == report


def test_defaults_fill_empty_cells_or_stand_for_a_missing_column():
    mapping = spec()
    mapping["tables"]["leads"]["defaults"] = {"industry": "unknown", "source": "web"}
    result = run(mapping)
    assert result.data.leads["industry"].tolist()[2] == "unknown"
    assert set(result.data.leads["source"]) == {"web"}
    assert "leads.industry: 1 empty value set to 'unknown'" in result.repairs
    assert "leads.source: not in the export, set to 'web' in all 5 rows" in result.repairs


def test_a_missing_raw_column_is_named_with_the_columns_that_are_there():
    mapping = spec()
    mapping["tables"]["leads"]["columns"]["source"] = "Lead Source"
    expected = (
        "opportunities.csv has no column 'Lead Source' (mapped to leads.source); "
        "its columns are: Id, Created, Owner, Stage, Amount, Close, Industry"
    )
    with pytest.raises(MappingError, match=f"^{re.escape(expected)}$"):
        run(mapping)


def test_a_missing_file_is_named_with_the_files_that_are_there():
    mapping = spec(reps={"file": "users.csv", "columns": {"rep_id": "Login"}})
    with pytest.raises(MappingError) as err:
        run(mapping)
    assert str(err.value) == (
        "the export has no file 'users.csv' (needed for reps); its files are: opportunities"
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {
                "leads": {
                    "file": "o",
                    "columns": {"lead_id": "Id", "created_at": "C", "indsutry": "I"},
                }
            },
            "tables.leads: columns: 'indsutry' is not a column of leads (did you mean 'industry'?)",
        ),
        (
            {"leads": {"file": "o", "columns": {"lead_id": "Id"}}},
            "tables.leads: 'created_at' is required: map it in columns or give it a value",
        ),
        (
            {
                "leads": {
                    "file": "o",
                    "columns": {"lead_id": "I", "created_at": "C"},
                    "values": {"industry": {"a": "b"}},
                }
            },
            "tables.leads: values: 'industry' is not mapped in columns",
        ),
        (
            {
                "assignments": {
                    "file": "o",
                    "distinct": True,
                    "columns": {"lead_id": "I", "rep_id": "O", "status": "S"},
                }
            },
            "tables.assignments: distinct applies to reps and leads only",
        ),
        (
            {"reps": {"file": "o", "columns": {"rep_id": "O"}, "colums": {}}},
            "tables.reps.colums: Extra inputs are not permitted",
        ),
        (
            {"reps": {"file": "o", "columns": {"rep_id": "O"}, "date_format": "dd/mm/yyyy"}},
            "tables.reps.date_format: 'dd/mm/yyyy' has no strftime directive",
        ),
        # Reps may be left out only by an export without owners (lead scoring).
        ({"reps": None}, "tables: reps: assignments map rep_id, so the reps must be mapped too"),
    ],
)
def test_a_mapping_that_is_not_valid_says_where_and_why(change, message):
    with pytest.raises(MappingError, match=re.escape(message)):
        ColumnMapping.parse(spec(**change))


def test_yaml_text_is_parsed_and_bad_yaml_is_reported():
    mapping = ColumnMapping.from_yaml(
        "tables:\n"
        "  leads: {file: o.csv, columns: {lead_id: Id, created_at: Created}}\n"
        "  assignments: {file: o.csv, columns: {lead_id: Id, rep_id: Owner, status: Stage},\n"
        "                values: {status: {1: won, 0: lost}}}\n"
        "  reps: {file: o.csv, distinct: true, columns: {rep_id: Owner}}\n"
    )
    assert mapping.tables.assignments.values == {"status": {"1": "won", "0": "lost"}}
    with pytest.raises(MappingError, match="not valid YAML"):
        ColumnMapping.from_yaml("tables: [unclosed")
    with pytest.raises(MappingError, match="must be a YAML mapping with a 'tables' key"):
        ColumnMapping.from_yaml("- a list")


def test_a_date_format_reads_day_first_dates_and_rejects_the_others():
    raw = opportunities().assign(
        Created=["01/03/2024", "02/03/2024", "13/03/2024", "x", "3/3/2024"]
    )
    mapping = spec()
    mapping["tables"]["leads"]["date_format"] = "%d/%m/%Y"
    with pytest.raises(MappingError) as err:
        run(mapping, raw)
    assert str(err.value) == (
        "leads.created_at: opportunities.csv column 'Created' has 1 value not matching "
        "date_format '%d/%m/%Y', e.g. 'x'; fix the values or the date_format"
    )
    data = validate_crm(
        run(mapping, raw.assign(Created=raw["Created"].replace("x", "1/1/2024"))).data
    )
    assert data.leads["created_at"].tolist()[2:] == [
        pd.Timestamp("2024-03-13"),
        pd.Timestamp("2024-01-01"),
        pd.Timestamp("2024-03-03"),
    ]


def test_capacity_is_a_busy_days_volume_and_reps_without_history_are_new_hires():
    # ana: 3 leads on Mar 1, none on Mar 2, 1 on Mar 3 -> days [3, 0, 1], 90% quantile 2.6 -> 3.
    # bo: 1 lead -> 1. cy (only in the users file): no history -> hired on the export date
    # (the latest date anywhere, a close date), capacity the median of the others (2).
    raw = pd.DataFrame(
        {
            "Id": ["O1", "O2", "O3", "O4", "O5"],
            "Created": ["2024-03-01", "2024-03-01", "2024-03-01", "2024-03-03", "2024-03-02"],
            "Owner": ["ana", "ana", "ana", "ana", "bo"],
            "Stage": ["New"] * 4 + ["Closed Won"],
            "Close": ["", "", "", "", "2024-03-20"],
            "Amount": ["1"] * 5,
        }
    )
    users = pd.DataFrame({"Login": ["cy", "bo", "ana"], "Team": ["a", "b", "c"]})
    mapping = spec(reps={"file": "users", "columns": {"rep_id": "Login", "team": "Team"}})
    mapping["tables"]["leads"]["columns"].pop("industry")
    result = apply_mapping({"opportunities": raw, "users": users}, ColumnMapping.parse(mapping))
    reps = validate_crm(result.data).reps.set_index("rep_id")
    assert reps["daily_capacity"].to_dict() == {"cy": 2, "bo": 1, "ana": 3}
    assert reps["hire_date"].dt.strftime("%Y-%m-%d").to_dict() == {
        "cy": "2024-03-20",
        "bo": "2024-03-02",
        "ana": "2024-03-01",
    }
    assert result.repairs[-4:-2] == [
        "1 rep with no assignment history (cy): kept as reps with no history, hire_date set "
        "to the export date 2024-03-20 (new hires) and daily_capacity set to the median of "
        "the others (2)",
        "reps.active: not in the export, set to True for all 3 reps",
    ]


def test_a_mapping_may_say_since_when_the_reps_attributes_hold():
    users = pd.DataFrame(
        {
            "Login": ["ana", "bo"],
            "Region": ["EU", "US"],
            "Role Changed": ["15/02/2024", ""],  # bo: not known since when
        }
    )
    mapping = spec(
        reps={
            "file": "users",
            "columns": {"rep_id": "Login", "region": "Region", "attributes_since": "Role Changed"},
            "date_format": "%d/%m/%Y",
        }
    )
    result = apply_mapping(
        {"opportunities": opportunities(), "users": users}, ColumnMapping.parse(mapping)
    )
    reps = validate_crm(result.data).reps.set_index("rep_id")
    assert reps.loc["ana", "attributes_since"] == pd.Timestamp("2024-02-15")
    assert pd.isna(reps.loc["bo", "attributes_since"])


def test_reps_without_any_history_need_a_mapped_capacity():
    users = pd.DataFrame({"Login": ["cy"]})
    mapping = spec(reps={"file": "users", "columns": {"rep_id": "Login"}})
    raw = opportunities().assign(Owner="")
    with pytest.raises(MappingError, match="reps: hire_date and daily_capacity not in the mapping"):
        apply_mapping({"opportunities": raw, "users": users}, ColumnMapping.parse(mapping))


@settings(max_examples=20, deadline=None)
@given(
    st.lists(
        st.text(st.characters(codec="utf-8", exclude_categories=["Cs", "Cc"]), min_size=1),
        min_size=7,
        max_size=7,
        unique=True,
    ).filter(lambda names: all(n == n.strip() for n in names))
)
def test_renaming_raw_columns_with_the_mapping_changes_nothing(names):
    # Any header, in any script (Chinese CRM exports), maps the same data the same way.
    renames = dict(zip(opportunities().columns, names, strict=True))
    mapping = spec()
    for table in mapping["tables"].values():
        table["columns"] = {k: renames[v] for k, v in table["columns"].items()}
    got = run(mapping, opportunities().rename(columns=renames)).data
    want = run(spec()).data
    for name, frame in want.tables().items():
        pd.testing.assert_frame_equal(got.tables()[name], frame)


def test_the_example_mapping_reads_a_salesforce_like_report():
    mapping = ColumnMapping.from_yaml((REPO / "pipelines/mappings/example.yaml").read_text())
    assert required_files(mapping) == ["opportunities.csv"]
    report = pd.DataFrame(
        {
            "Opportunity ID": ["006A", "006B", "006C"],
            "Created Date": ["01/02/2024", "15/02/2024", "20/02/2024"],
            "Lead Source": ["Web", "", "Partner"],
            "Industry": ["Hi-Tech", "Healthcare", ""],
            "Sales Region": ["Europe", "Americas", "Europe"],
            "Product Name": ["Pro", "Basic", "Pro"],
            "Account ID": ["001X", "001Y", "001X"],
            "Employees": ["1,200", "40", ""],
            "Amount": ["$12,000.00", "900", "5000"],
            "Stage": ["Closed Won", "Qualification", "Closed Lost"],
            "Close Date": ["01/03/2024", "30/06/2024", "29/02/2024"],
            "Opportunity Owner": ["Ann Lee", "Raj Patel", "Ann Lee"],
            "Owner Role": ["AE EMEA", "AE AMER", "AE EMEA"],
            "Owner Region": ["EMEA", "AMER", "EMEA"],
            "Type": ["New Business", "Renewal", "New Business"],
        }
    )
    data = validate_crm(adapt({"opportunities": report}, mapping).data)
    assert data.leads["industry"].tolist() == ["technology", "medical", "unknown"]
    assert data.leads["company_size"].tolist()[:2] == [1200, 40]
    assert data.assignments["status"].tolist() == ["won", "open", "lost"]
    assert data.assignments["closed_at"].isna().tolist() == [False, True, False]
    assert data.reps["rep_id"].tolist() == ["Ann Lee", "Raj Patel"]


def test_mappings_are_resolved_by_name_or_data():
    assert resolve_mapping("maven") is BUILTIN_MAPPINGS["maven"]
    assert required_files("maven") == ["sales_pipeline", "accounts", "products", "sales_teams"]
    assert isinstance(resolve_mapping(spec()), ColumnMapping)
    with pytest.raises(
        MappingError, match="unknown mapping 'hubspot': the built-in mappings are maven"
    ):
        resolve_mapping("hubspot")


# --- the built-in Maven adapter (on the real sample) -------------------------------------------


@pytest.fixture(scope="module")
def maven_raw() -> dict[str, pd.DataFrame]:
    if not MAVEN.is_dir():
        pytest.skip(f"the shared Maven sample is not present ({MAVEN})")
    from pipelines.io import read_raw_folder

    return read_raw_folder(MAVEN)


@pytest.fixture(scope="module")
def maven(maven_raw):
    result = adapt_maven(maven_raw)
    return result, validate_crm(result.data)


def test_maven_has_every_deal_and_agent(maven):
    _, data = maven
    assert (len(data.leads), len(data.reps), len(data.assignments)) == (8800, 35, 8800)
    closed = data.assignments[data.assignments["status"] != "open"]
    assert (closed["status"] == "won").mean() == pytest.approx(0.6315, abs=0.001)


@pytest.mark.parametrize(
    "repair",
    [
        "product 'GTXPro' renamed to 'GTX Pro' (its name in products.csv) in 1,480 deals",
        "sector 'technolgy' corrected to 'technology' in 12 accounts (1,165 deals)",
        "office_location 'Philipines' corrected to 'Philippines' in 1 account (94 deals)",
        "1,425 open deals (Engaging/Prospecting) have no account: industry and region set to "
        "'unknown', company_size and account_id left empty",
        "2,473 lost deals with close_value 0: deal_value left empty",
        "500 deals have no engage_date (500 Prospecting): they keep their agent as open deals "
        "not yet contacted; created_at and assigned_at set to the export date 2017-12-31",
        "5 reps with no assignment history (Mei-Mei Johns, Elizabeth Anderson, Natalya Ivanova, "
        "Carol Thompson, Carl Lin): kept as reps with no history, hire_date set to the export "
        "date 2017-12-31 (new hires) and daily_capacity set to the median of the others (2)",
        "reps.hire_date: not in the export, set to each rep's first engage_date (30 reps)",
        "leads.source: not in the export, set to 'unknown' in all 8,800 rows",
    ],
)
def test_maven_reports_each_repair_with_its_count(maven, repair):
    result, _ = maven
    assert any(line.startswith(repair) for line in result.repairs), result.repairs


def test_maven_quirks_are_gone_from_the_tables(maven):
    _, data = maven
    leads = data.leads.set_index("lead_id")
    asg = data.assignments.set_index("lead_id")
    assert "GTXPro" not in set(leads["product"])
    assert leads["expected_value"].notna().all()
    assert {"technolgy", "Philipines"}.isdisjoint(set(leads["industry"]) | set(leads["region"]))
    assert (leads["industry"] == "unknown").sum() == 1425
    assert asg.loc[asg["status"] == "lost", "deal_value"].isna().all()
    assert (asg.loc[asg["status"] == "won", "deal_value"] > 0).all()
    never_engaged = asg["first_contact_at"].isna()
    assert never_engaged.sum() == 500
    assert (asg.loc[never_engaged, "status"] == "open").all()
    assert (leads.loc[never_engaged[never_engaged].index, "created_at"] == "2017-12-31").all()
    reps = data.reps.set_index("rep_id")
    assert reps.loc["Moses Frase", "hire_date"] == pd.Timestamp("2016-10-20")
    assert reps.loc["Moses Frase", "team"] == "Dustin Brinkmann"
    assert reps["daily_capacity"].between(1, 3).all()


def test_maven_names_a_missing_file_and_column(maven_raw):
    raw = {k: v for k, v in maven_raw.items() if k != "products"}
    raw["sales_teams"] = raw["sales_teams"].drop(columns="manager")
    with pytest.raises(MappingError) as err:
        adapt(raw, "maven")
    assert str(err.value).splitlines() == [
        "the export has no file 'products.csv' (needed by the maven mapping); its files are: "
        "accounts, data_dictionary, sales_pipeline, sales_teams",
        "sales_teams.csv has no column 'manager' (needed by the maven mapping); its columns "
        "are: sales_agent, regional_office",
    ]


# --- several files: unions, joins, filters, activities -----------------------------------------


def crm_files() -> dict[str, pd.DataFrame]:
    """A leads export, a deals export linked to it by the lead's id, and two activity exports."""
    leads = pd.DataFrame(
        {
            "Lead Id": ["L1", "L2", "L3", "L4", "L5"],
            "Lead Owner": ["ana", "bo", "ana", "", "bo"],
            "Created Time": [
                "2024-03-01 09:00",
                "2024-03-02 10:00",
                "2024-03-03 11:00",
                "2024-03-04 12:00",
                "2024-03-05 13:00",
            ],
            "Lead Status": ["Contacted", "Lost Lead", "Contacted", "New", "Contacted"],
            "Modified Time": ["2024-03-09 08:00"] * 5,
            "Email": ["a@acme.com", "b@beta.io", "c@test.example", "d@delta.com", "e@eps.com"],
        }
    )
    deals = pd.DataFrame(
        {
            "Deal Id": ["D1", "D3", "D9"],
            "Lead Id": ["L1", "L3", "L9"],
            "Stage": ["Closed Won", "Negotiation", "Closed Lost"],
            "Closing Date": ["2024-03-20", "2024-04-30", "2024-03-21"],
            "Amount": ["1,000", "", "50"],
        }
    )
    calls = pd.DataFrame(
        {
            "Lead": ["L1", "L1", "L2", "L5", "L9"],
            "Start": [
                "2024-03-01 10:00",
                "2024-02-28 10:00",
                "2024-03-05 08:00",
                "2024-03-06 09:00",
                "2024-03-01 09:00",
            ],
            "By": ["ana", "ana", "cy", "bo", "bo"],
        }
    )
    emails = pd.DataFrame({"Lead": ["L1", "L5"], "Sent": ["01/03/2024 09:30", "07/03/2024 09:00"]})
    return {"leads": leads, "deals": deals, "calls": calls, "emails": emails}


def joined(**assignments: object) -> dict:
    """Leads from leads.csv; assignments from leads.csv with outcomes joined from deals.csv."""
    asg = {
        "file": "leads.csv",
        "columns": {
            "lead_id": "Lead Id",
            "rep_id": "Lead Owner",
            "status": "Lead Status",
            "closed_at": "Modified Time",
        },
        "join": [
            {
                "file": "deals.csv",
                "on": "Lead Id",
                "columns": {"status": "Stage", "closed_at": "Closing Date", "deal_value": "Amount"},
            }
        ],
        "values": {
            "status": {"Closed Won": "won", "Closed Lost": "lost", "Lost Lead": "lost", "*": "open"}
        },
    }
    return {
        "tables": {
            "leads": {
                "file": "leads.csv",
                "columns": {"lead_id": "Lead Id", "created_at": "Created Time"},
            },
            "assignments": asg | assignments,
            "reps": {"file": "leads.csv", "distinct": True, "columns": {"rep_id": "Lead Owner"}},
        }
    }


def test_a_join_takes_outcomes_from_the_deals_file_and_the_leads_own_values_elsewhere():
    result = apply_mapping(crm_files(), ColumnMapping.parse(joined()))
    data = validate_crm(result.data)
    asg = data.assignments.set_index("lead_id")
    # L1 and L3 have deals: their stage, close date and amount; L2 and L5 keep the lead's own
    # status and last change; L4 has no owner and is left unassigned.
    assert asg["status"].to_dict() == {"L1": "won", "L2": "lost", "L3": "open", "L5": "open"}
    assert asg.loc["L1", "closed_at"] == pd.Timestamp("2024-03-20")
    assert asg.loc["L2", "closed_at"] == pd.Timestamp("2024-03-09 08:00")
    assert pd.isna(asg.loc["L3", "closed_at"])
    assert asg.loc["L1", "deal_value"] == 1000.0
    assert (
        "assignments: 2 of 5 rows of leads.csv matched a row of deals.csv on 'Lead Id' = "
        "'Lead Id' (status, closed_at, deal_value from deals.csv); not used: 1 row of deals.csv "
        "with no match"
    ) in result.repairs
    # Where each value came from: L1's status is row 0 of deals.csv, L2's row 1 of leads.csv.
    rows = {lead: i for i, lead in enumerate(result.data.assignments["lead_id"])}
    assert result.locate("assignments", rows["L1"], "status").__dict__ == {
        "file": "deals.csv",
        "row": 0,
        "column": "Stage",
    }
    assert result.locate("assignments", rows["L2"], "status").__dict__ == {
        "file": "leads.csv",
        "row": 1,
        "column": "Lead Status",
    }


def test_a_join_needs_one_row_per_key():
    files = crm_files()
    files["deals"] = pd.concat([files["deals"], files["deals"].iloc[[0]]], ignore_index=True)
    with pytest.raises(MappingError) as err:
        apply_mapping(files, ColumnMapping.parse(joined()))
    assert str(err.value) == (
        "deals.csv: 1 value of 'Lead Id' on more than one row (e.g. 'L1'); a join takes one row "
        "per key: add a filter that keeps one row per 'Lead Id'"
    )


def test_first_contact_is_the_earliest_activity_after_the_assignment_by_its_rep():
    activities = [
        {"file": "calls.csv", "lead": "Lead", "at": "Start", "rep": "By"},
        {"file": "emails.csv", "lead": "Lead", "at": "Sent", "date_format": "%d/%m/%Y %H:%M"},
    ]
    result = apply_mapping(crm_files(), ColumnMapping.parse(joined(first_contact=activities)))
    asg = validate_crm(result.data).assignments.set_index("lead_id")
    # L1: the e-mail at 09:30 beats the call at 10:00 (the call of Feb 28 predates the lead);
    # L2: only a call by cy, who is not its rep; L5: bo's call on Mar 6 beats the e-mail.
    assert asg["first_contact_at"].to_dict() == {
        "L1": pd.Timestamp("2024-03-01 09:30"),
        "L2": pd.NaT,
        "L3": pd.NaT,
        "L5": pd.Timestamp("2024-03-06 09:00"),
    }
    assert (
        "assignments.first_contact_at: the earliest activity at or after each assignment, by "
        "the assigned rep in calls.csv, from 7 activity rows in calls.csv, emails.csv: set for "
        "2 of 4 rows; not used: 1 activity row with no lead of the assignments, 2 activity rows "
        "before their lead's assignment or by another rep"
    ) in result.repairs
    rows = {lead: i for i, lead in enumerate(result.data.assignments["lead_id"])}
    found = result.locate("assignments", rows["L1"], "first_contact_at")
    assert (found.file, found.row, found.column) == ("emails.csv", 0, "Sent")


def test_first_contact_times_that_are_not_dates_are_named_once():
    files = crm_files()
    files["calls"].loc[[0, 1], "Start"] = "soon"
    mapping = joined(first_contact=[{"file": "calls", "lead": "Lead", "at": "Start"}])
    with pytest.raises(MappingError) as err:
        apply_mapping(files, ColumnMapping.parse(mapping))
    assert str(err.value) == (
        "assignments.first_contact_at: calls column 'Start' has 2 values that are not dates, "
        "e.g. 'soon'; fix the values or the date_format of this activity file"
    )


@pytest.mark.parametrize(
    ("row_filter", "kept", "repair"),
    [
        (
            {"column": "Email", "matches": r"(?i)\.example$", "reason": "test records"},
            ["L1", "L2", "L4", "L5"],
            "filters: 1 row of leads.csv dropped where Email matches '(?i)\\.example$' "
            "(test records)",
        ),
        (
            {"column": "Lead Owner", "in": ["bo"], "reason": "internal users"},
            ["L1", "L3", "L4"],
            "filters: 2 rows of leads.csv dropped where Lead Owner is one of 'bo' (internal users)",
        ),
        (
            {"column": "Lead Status", "not_in": ["Contacted", "New"]},
            ["L1", "L3", "L4", "L5"],
            "filters: 1 row of leads.csv dropped where Lead Status is not one of 'Contacted', 'New'",
        ),
        (
            {"column": "Lead Owner", "empty": True},
            ["L1", "L2", "L3", "L5"],
            "filters: 1 row of leads.csv dropped where Lead Owner is empty",
        ),
        (
            {"column": "Email", "in": ["nobody@nowhere.com"]},
            ["L1", "L2", "L3", "L4", "L5"],
            "filters: 0 rows of leads.csv dropped where Email is one of 'nobody@nowhere.com'",
        ),
    ],
)
def test_filters_drop_rows_of_a_file_and_say_how_many(row_filter, kept, repair):
    mapping = joined() | {"filters": [{"file": "leads.csv"} | row_filter]}
    result = apply_mapping(crm_files(), ColumnMapping.parse(mapping))
    assert result.data.leads["lead_id"].tolist() == kept
    assert repair in result.repairs


def test_a_lead_filtered_from_its_file_takes_its_assignment_rows_along():
    # Assignments built from deals.csv this time: the deal of a dropped lead must go too.
    mapping = {
        "filters": [{"file": "leads", "column": "Email", "matches": "example", "reason": "test"}],
        "tables": {
            "leads": {
                "file": "leads",
                "columns": {"lead_id": "Lead Id", "created_at": "Created Time"},
            },
            "assignments": {
                "file": "deals",
                "columns": {
                    "lead_id": "Lead Id",
                    "status": "Stage",
                    "closed_at": "Closing Date",
                    "deal_value": "Amount",
                    "assigned_at": "Closing Date",
                },
                "values": {"status": {"Closed Won": "won", "Closed Lost": "lost", "*": "open"}},
                "defaults": {"rep_id": "ana"},
            },
            "reps": {"file": "leads", "distinct": True, "columns": {"rep_id": "Lead Owner"}},
        },
    }
    result = apply_mapping(crm_files(), ColumnMapping.parse(mapping))
    assert result.data.assignments["lead_id"].tolist() == ["L1", "L9"]
    assert "assignments: 1 row of deals dropped with their leads (removed by the filters)" in (
        result.repairs
    )


def test_several_files_are_read_as_one_table_in_order():
    files = crm_files()
    older = files["leads"].iloc[:2].assign(**{"Lead Id": ["K1", "K2"]})
    mapping = joined()
    for table in ("leads", "assignments", "reps"):
        mapping["tables"][table]["file"] = ["leads_2023.csv", "leads.csv"]
    result = apply_mapping(files | {"leads_2023": older}, ColumnMapping.parse(mapping))
    assert result.data.leads["lead_id"].tolist() == ["K1", "K2", "L1", "L2", "L3", "L4", "L5"]
    assert "leads: 7 rows from 2 files (leads_2023.csv: 2, leads.csv: 5)" in result.repairs
    origin = result.origins["leads"]
    assert origin[["file", "row"]].values.tolist()[1:3] == [["leads_2023.csv", 1], ["leads.csv", 0]]


def test_reclaimable_stages_keep_late_stage_deals_with_their_owner():
    result = apply_mapping(
        crm_files(), ColumnMapping.parse(joined(reclaimable_stages=["Contacted", "New"]))
    )
    asg = validate_crm(result.data).assignments.set_index("lead_id")
    # L3's deal is in Negotiation: it stays; L5 is only Contacted: it may be reclaimed.
    assert asg["reclaimable"].to_dict() == {"L1": True, "L2": True, "L3": False, "L5": True}
    assert (
        "assignments.reclaimable: open rows that may be reclaimed after the first-contact SLA "
        "(stages Contacted, New): 1 (Contacted 1); open rows in other stages, kept with their "
        "rep: 1 (Negotiation 1); no assignment is in stage 'New'"
    ) in result.repairs


def test_unassigned_outcome_lost_turns_leads_nobody_owns_into_losses_with_no_rep():
    result = apply_mapping(crm_files(), ColumnMapping.parse(joined(unassigned_outcome="lost")))
    data = validate_crm(result.data)
    lost = data.assignments.set_index("lead_id").loc["L4"]
    assert pd.isna(lost["rep_id"]) and lost["status"] == "lost"
    assert lost["assigned_at"] == pd.Timestamp("2024-03-04 12:00")
    assert lost["closed_at"] == pd.Timestamp("2024-03-20")  # the latest date in the export
    assert (
        "assignments: 1 lead without an owner taken as lost (unassigned_outcome: lost): each is "
        "a lost outcome with no rep, assigned at its created_at and closed on the export date "
        "2024-03-20 (the latest date in the export); they count as not won in the base rate and "
        "the lead-level win rates, never for a rep"
    ) in result.repairs
    # Its line is the lead's own line in leads.csv.
    found = result.locate("assignments", len(data.assignments) - 1, "status")
    assert (found.file, found.row) == ("leads.csv", 3)


def test_a_closed_row_without_an_owner_is_an_outcome_with_no_rep():
    files = crm_files()
    files["leads"].loc[1, "Lead Owner"] = ""
    result = apply_mapping(files, ColumnMapping.parse(joined()))
    asg = validate_crm(result.data).assignments.set_index("lead_id")
    assert asg.loc["L2", "status"] == "lost" and pd.isna(asg.loc["L2", "rep_id"])
    assert (
        "assignments: 1 won or lost row of leads.csv without a rep_id (0 won, 1 lost): kept as "
        "outcomes with no rep (they count in the lead-level win rates, never for a rep)"
    ) in result.repairs


def _no_deal_value(m):
    m["tables"]["assignments"]["join"][0]["columns"].pop("deal_value")


def _no_close_date(m):
    m["tables"]["assignments"]["columns"].pop("closed_at")
    m["tables"]["assignments"]["join"][0]["columns"].pop("closed_at")


def _no_recoding(m):
    m["tables"]["assignments"]["values"].pop("status")


def _empty_created(m):
    m["tables"]["leads"]["columns"]["created_at"] = "Rating"


@pytest.mark.parametrize(
    ("change", "files", "message"),
    [
        (
            _no_deal_value,
            {},
            "assignments.deal_value is missing on all 1 won row: map it, or add "
            "`defaults: {deal_value: 0}`",
        ),
        (
            lambda m: None,
            {"deals": {"Amount": ["", "", "50"]}},
            "assignments.deal_value is missing on all 1 won row (deals.csv column 'Amount' is "
            "empty on them): map the column that holds it, or add `defaults: {deal_value: 0}`",
        ),
        (
            _no_close_date,
            {},
            "assignments.closed_at is missing on all 2 won or lost rows: map the close date "
            "(e.g. closed_at: Close Date)",
        ),
        (
            _no_recoding,
            {},
            "assignments.status: 5 rows of leads.csv column 'Lead Status' or deals.csv column "
            "'Stage' are not open, won or lost after recoding: 'Closed Won' (1), 'Contacted' (1), "
            "'Lost Lead' (1), 'Negotiation' (1), 'New' (1); recode each stage under values: status "
            "(e.g. {Closed Won: won, Closed Lost: lost, '*': open})",
        ),
        (
            _empty_created,
            {"leads": {"Rating": [""] * 5}},
            "leads.csv column 'Rating' (mapped to leads.created_at) is empty on all 5 rows: map "
            "the column that holds created_at",
        ),
    ],
)
def test_a_problem_of_a_whole_column_is_reported_once_with_the_fix(change, files, message):
    mapping = joined()
    change(mapping)
    raw = crm_files()
    for name, columns in files.items():
        raw[name] = raw[name].assign(**columns)
    with pytest.raises(MappingError) as err:
        apply_mapping(raw, ColumnMapping.parse(mapping))
    assert str(err.value) == message


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda a: a["join"][0].pop("on"),
            "tables.assignments.join.0: give the key as on (the same name in both files) or as "
            "left_on and right_on",
        ),
        (
            lambda a: a["join"][0].update(left_on="Lead Id"),
            "tables.assignments.join.0: give the key as on",
        ),
        (
            lambda a: (
                a.update(first_contact=[{"file": "calls.csv", "lead": "Lead", "at": "Start"}])
                or a["columns"].update(first_contact_at="Start")
            ),
            "tables.assignments: first_contact derives first_contact_at: do not also map it",
        ),
        (
            lambda a: a.update(reclaimable_stages=["Closed Won"]),
            "tables.assignments: reclaimable_stages: 'Closed Won' is recoded to 'won' by "
            "values.status; only open stages can be reclaimed",
        ),
        (
            lambda a: a.update(reclaimable_stages=[]),
            "reclaimable_stages: list at least one stage",
        ),
        (
            lambda a: a.update(unassigned_outcome="won"),
            "tables.assignments.unassigned_outcome: Input should be 'unassigned' or 'lost'",
        ),
        (
            lambda a: a.update(date_format={"status": "%d/%m/%Y"}),
            "tables.assignments: date_format: 'status' is not a date column of assignments "
            "(those are assigned_at, first_contact_at, closed_at)",
        ),
        (
            lambda a: a.update(file=["leads.csv", "leads.csv"]),
            "tables.assignments.file: 'leads.csv' listed twice",
        ),
        (
            lambda a: a["join"][0]["columns"].update(stauts="Stage"),
            "tables.assignments: join[0].columns: 'stauts' is not a column of assignments (did "
            "you mean 'status'?)",
        ),
    ],
)
def test_a_multi_file_mapping_that_is_not_valid_says_where_and_why(change, message):
    mapping = joined()
    change(mapping["tables"]["assignments"])
    with pytest.raises(MappingError, match=re.escape(message)):
        ColumnMapping.parse(mapping)


@pytest.mark.parametrize(
    ("row_filter", "message"),
    [
        (
            {"file": "leads.csv", "column": "Email", "in": ["x"], "matches": "y"},
            "filters.0: give exactly one of in, not_in, matches, empty (got in, matches)",
        ),
        (
            {"file": "leads.csv", "column": "Email"},
            "filters.0: give exactly one of in, not_in, matches, empty",
        ),
        (
            {"file": "leads.csv", "column": "Email", "matches": "(unclosed"},
            "filters.0.matches: '(unclosed' is not a regular expression",
        ),
        (
            {"file": "users.csv", "column": "Email", "empty": True},
            "filters[0]: 'users.csv' is not a file the mapping reads (leads.csv, deals.csv)",
        ),
    ],
)
def test_a_filter_that_is_not_valid_says_why(row_filter, message):
    with pytest.raises(MappingError, match=re.escape(message)):
        ColumnMapping.parse(joined() | {"filters": [row_filter]})


def test_every_missing_file_and_column_of_a_multi_file_mapping_is_named():
    files = crm_files()
    del files["emails"]
    files["deals"] = files["deals"].drop(columns="Lead Id")
    mapping = joined(first_contact=[{"file": "emails.csv", "lead": "Lead", "at": "Sent"}])
    mapping["filters"] = [{"file": "leads.csv", "column": "Region", "in": ["x"]}]
    with pytest.raises(MappingError) as err:
        apply_mapping(files, ColumnMapping.parse(mapping))
    assert str(err.value).splitlines() == [
        "deals.csv has no column 'Lead Id' (the key of the join into assignments); its columns "
        "are: Deal Id, Stage, Closing Date, Amount",
        "the export has no file 'emails.csv' (activities for first_contact); its files are: "
        "calls, deals, leads",
        "leads.csv has no column 'Region' (tested by filters[0]); its columns are: Lead Id, "
        "Lead Owner, Created Time, Lead Status, Modified Time, Email",
    ]
