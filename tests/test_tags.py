"""One rule for comparing tags (features.tags), and the eligibility rule that uses it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from features.tags import has_tag, same_tag, tag, tag_set, tag_sets, tag_values
from matching.config import EligibilityRules
from matching.eligibility import Cause, Eligibility


@pytest.mark.parametrize(
    ("written", "compared"),
    [
        ("  Retail ", "retail"),
        ("Straße", "strasse"),  # case folding, not lower(): "straße".lower() keeps the ß
        ("STRASSE", "strasse"),
        ("İstanbul", "i̇stanbul"),  # capital dotted I folds to i + combining dot above
        ("ISTANBUL", "istanbul"),  # ... so a dotless capital I is another city name
        ("医疗", "医疗"),
        ("ＳａａＳ", "saas"),  # full-width letters of a Chinese input method
        ("Cafe\u0301", "café"),  # e + combining acute is the letter é
        ("", None),
        ("   ", None),
        (None, None),
        (np.nan, None),
        (pd.NA, None),
    ],
)
def test_a_value_is_compared_normalised_case_folded_and_stripped(written, compared):
    assert tag(written) == compared


@pytest.mark.parametrize(
    ("cell", "tags"),
    [
        ("Retail; SOFTWARE ;", {"retail", "software"}),
        ("医疗；教育", {"医疗", "教育"}),  # the full-width semicolon separates too
        ("Straße;strasse", {"strasse"}),
        (";;", set()),
        (None, set()),
    ],
)
def test_a_cell_of_tags_is_split_on_semicolons(cell, tags):
    assert tag_set(cell) == tags


def test_columns_are_compared_row_by_row():
    skills = tag_sets(pd.Series(["Straße;İstanbul", "医疗", None, "retail"]))
    industry = pd.Series(["STRASSE", "医疗", "retail", None])
    assert has_tag(industry, skills).tolist() == [True, True, False, False]
    assert has_tag(
        np.array(["i̇stanbul", "istanbul", "医疗", "x"], dtype=object), skills
    ).tolist() == [
        True,
        False,
        False,
        False,
    ]
    assert same_tag(
        pd.Series(["EU ", "eu", None, "Asia"]), pd.Series(["eu", "EU", None, "Asie"])
    ).tolist() == [
        True,
        True,
        False,
        False,
    ]
    assert tag_values(pd.Series(["A", "a", None], index=[7, 8, 9])).to_dict() == {
        7: "a",
        8: "a",
        9: None,
    }


@given(st.text())
def test_the_rule_is_idempotent(text):
    assert tag(tag(text)) == tag(text)


def _eligible(rep_skills: str, industry: str) -> bool:
    leads = pd.DataFrame({"lead_id": ["L1"], "industry": [industry], "product": [None]})
    reps = pd.DataFrame(
        {"rep_id": ["R1"], "active": [True], "available": [True], "skills": [rep_skills]}
    )
    rules = EligibilityRules(skills=True, region=False, language=False)
    eligibility = Eligibility.build(leads, reps, rules, rep_index=pd.Index(reps["rep_id"]))
    cause = eligibility.causes(np.array([0]), np.array([0]))[0]
    assert cause in (Cause.ELIGIBLE, Cause.SKILLS)
    return cause == Cause.ELIGIBLE


@pytest.mark.parametrize(
    ("rep_skills", "industry", "eligible"),
    [
        ("logistics;STRASSE", "Straße", True),
        ("İstanbul", "İSTANBUL", True),
        ("医疗；教育", "教育", True),
        ("ＳａａＳ", "saas", True),
        ("ISTANBUL", "İstanbul", False),
        ("retail", "software", False),
    ],
)
def test_the_skills_rule_and_the_skill_feature_agree(rep_skills, industry, eligible):
    feature = has_tag(pd.Series([industry]), tag_sets(pd.Series([rep_skills])))[0]
    assert _eligible(rep_skills, industry) == feature == eligible
