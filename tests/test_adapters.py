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
        ({"reps": None}, "tables.reps: Input should be a valid dictionary"),
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
