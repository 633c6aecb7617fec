"""Text values as every rule compares them: a rep's skills and languages against a lead's
industry, product and language, a lead's region against a rep's.

One rule, used by the eligibility rules (:mod:`matching.eligibility`) and the features that
mirror them (:func:`evaluation.off_policy.choice_features`), so a rule and a feature never disagree
on whether a rep has a lead's skill: text is put in Unicode NFKC form (the full-width letters
and the full-width semicolon "；" of Chinese input methods become plain ones, an accent typed
as a separate mark becomes one letter), case-folded (so "STRASSE" and "Straße" are one tag, as
Unicode's caseless matching says; ``str.lower`` would keep them apart) and stripped. Empty text
is no value. A cell of tags is split on ``;``.
"""

from __future__ import annotations

import unicodedata

import numpy as np
import pandas as pd

SEPARATOR = ";"


def tag(value: object) -> str | None:
    """The comparable form of one value: NFKC, case-folded, stripped; None when missing or
    empty."""
    if value is None or (np.ndim(value) == 0 and pd.isna(value)):
        return None
    text = unicodedata.normalize("NFKC", str(value)).casefold().strip()
    return text or None


def tag_set(value: object) -> frozenset[str]:
    """The comparable tags of one ';'-separated cell (empty for a missing or blank cell)."""
    text = tag(value)
    if text is None:
        return frozenset()
    return frozenset(t.strip() for t in text.split(SEPARATOR) if t.strip())


def tag_values(values: pd.Series | np.ndarray) -> pd.Series:
    """:func:`tag` of each value, as an object Series on ``values``' index (None when empty).
    Each distinct value is normalised once, so a column repeated per candidate pair is cheap."""
    values = _series(values)
    codes, uniques = pd.factorize(values, use_na_sentinel=True)
    tagged = np.array([tag(v) for v in uniques] + [None], dtype=object)
    return pd.Series(tagged[codes], index=values.index, dtype=object)


def tag_sets(values: pd.Series | np.ndarray) -> list[frozenset[str]]:
    """:func:`tag_set` of each ';'-separated cell, one set per row."""
    codes, uniques = pd.factorize(_series(values), use_na_sentinel=True)
    sets = [tag_set(v) for v in uniques] + [frozenset()]
    return [sets[c] for c in codes]


def has_tag(values: pd.Series | np.ndarray, tags: list[frozenset[str]]) -> np.ndarray:
    """(n,) bool: row k's value is one of ``tags[k]`` (false when the value is missing)."""
    tagged = tag_values(values)
    return np.array(
        [v is not None and v in t for v, t in zip(tagged, tags, strict=True)], dtype=bool
    )


def same_tag(left: pd.Series | np.ndarray, right: pd.Series | np.ndarray) -> np.ndarray:
    """(n,) bool: the two values of row k compare equal (false when either is missing)."""
    a = tag_values(left).to_numpy()
    b = tag_values(right).to_numpy()
    return np.array([x is not None and x == y for x, y in zip(a, b, strict=True)], dtype=bool)


def _series(values: pd.Series | np.ndarray) -> pd.Series:
    return values if isinstance(values, pd.Series) else pd.Series(values, dtype=object)
