"""Personal-data columns: found by name and by content, dropped at load time, never features."""

from __future__ import annotations

import re

import pandas as pd
import pytest

from features.privacy import drop_personal_columns, personal_reason, pseudonyms
from pipelines.io import load_data_folder, write_data_folder

PEOPLE = [
    f"{a} {b}"
    for a in ("Ana", "Bo", "Chen", "Dana", "Eve")
    for b in ("Silva", "Li", "Ng", "Wong", "Berg")
]

PERSONAL = [
    ("x_email", ["ana@example.com"], "its name suggests e-mail addresses"),
    ("x_WorkEmail", ["-"], "its name suggests e-mail addresses"),
    ("x_phone_number", ["1"], "its name suggests phone numbers"),
    ("x_first_name", ["Ana"], "its name suggests person names"),
    ("x_lead_name", ["Acme"], "its name suggests person names"),
    ("x_contact", ["Ana"], "its name suggests contact persons"),
    ("联系人", ["张伟"], "its name suggests contact persons"),
    ("x_手机", ["1"], "its name suggests phone numbers"),
    (
        "x_reach",
        ["ana.silva@example.com", "Bo Li <bo@acme.cn>", "chen@x.org", None],
        r"its values look like e-mail addresses \(100% of 3 checked\)",
    ),
    (
        "x_notes",
        ["+1 (415) 555-0132", "+86 138 0013 8000", "020-1234-5678", "call back"],
        r"its values look like phone numbers \(75% of 4 checked\)",
    ),
    ("x_who", PEOPLE, r"its values look like person names \(100% of 25 checked"),
    (
        "x_cn",
        ["张伟", "王芳", "李娜", "刘洋", "陈杰", "杨静", "赵磊", "黄敏", "周涛", "吴婷"] * 2,
        r"its values look like person names \(100% of 20 checked .* 50% of them distinct\)",
    ),
]

NOT_PERSONAL = [
    ("x_company_name", ["Acme"]),
    ("x_last_contact_date", ["2024-03-01"]),
    ("x_automobile", ["vw"]),
    ("x_signup", ["2024-03-01", "12/03/2024", "2024/3/2 10:00"]),
    ("x_revenue", ["718.62", "12345678", "-5"]),
    ("x_segment", ["Retail", "Retail", "Software"] * 10),
    ("x_city", ["New York", "San Jose", "Los Angeles"] * 10),
    ("x_product_series", ["GTX", "MG"] * 20),
]


@pytest.mark.parametrize(("column", "values", "reason"), PERSONAL, ids=[p[0] for p in PERSONAL])
def test_columns_that_look_personal_are_found_by_name_or_content(column, values, reason):
    found = personal_reason(column, pd.Series(values, dtype="string"))
    assert found is not None and re.match(reason, found), found


@pytest.mark.parametrize(("column", "values"), NOT_PERSONAL, ids=[p[0] for p in NOT_PERSONAL])
def test_ordinary_columns_are_kept(column, values):
    assert personal_reason(column, pd.Series(values, dtype="string")) is None


def test_numbers_are_never_phone_numbers_by_content():
    assert personal_reason("x_score", pd.Series([13800138000.0, 2.5])) is None


def test_dropping_keeps_the_contract_and_allowed_columns(tiny):
    leads = tiny.leads.assign(
        x_email=[f"p{i}@example.com" for i in range(5)],
        x_contact_channel=["e-mail"] * 5,
        x_score=["1", "2", "3", "4", "5"],
    )
    reps = tiny.reps.assign(phone=["+1 415 555 0100", "+1 415 555 0101", "+1 415 555 0102"])
    data = type(tiny)(reps=reps, leads=leads, assignments=tiny.assignments)
    kept, dropped = drop_personal_columns(data, allowed=["leads.x_contact_channel"])
    assert [(p.table, p.column) for p in dropped] == [("reps", "phone"), ("leads", "x_email")]
    assert "name" in kept.reps and "phone" not in kept.reps
    assert {"x_contact_channel", "x_score"} <= set(kept.leads.columns)
    assert "x_email" not in kept.leads
    assert dropped[1].sentence() == "leads x_email: its name suggests e-mail addresses"
    # Table-qualified or plain names both allow a column; the input is not changed.
    assert not drop_personal_columns(data, allowed=["x_email", "phone", "x_contact_channel"])[1]
    assert "x_email" in data.leads


def test_loading_a_folder_drops_personal_columns_and_says_so(tiny, tmp_path):
    leads = tiny.leads.assign(x_reach=[f"p{i}@example.com" for i in range(5)])
    write_data_folder(
        type(tiny)(reps=tiny.reps, leads=leads, assignments=tiny.assignments), tmp_path
    )
    loaded = load_data_folder(tmp_path)
    assert "x_reach" not in loaded.data.leads
    assert [p.sentence() for p in loaded.personal] == [
        "leads x_reach: its values look like e-mail addresses (100% of 5 checked)"
    ]
    allowed = load_data_folder(tmp_path, allow_personal=["x_reach"])
    assert "x_reach" in allowed.data.leads and allowed.personal == []


def test_pseudonyms_are_stable_one_way_and_distinct():
    keys = pseudonyms(["Anna Snelling", "R001", "Anna Snelling"])
    assert keys[0] == keys[2] != keys[1]
    assert all(len(k) == 16 and "Anna" not in k for k in keys)
