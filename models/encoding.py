"""Stable integer codes for categorical columns (MLflow signatures break on pandas ``category``)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, TransformerMixin

UNKNOWN_CODE = 0
MISSING = "<missing>"


class CategoryCodes(TransformerMixin, BaseEstimator):
    """Replace text columns by int32 codes learned at fit time.

    Known values get codes 1..K in sorted order (so the codes do not depend on row order); a
    missing value is the value ``"<missing>"``; values never seen at fit time, or seen fewer than
    ``min_count`` times, get :data:`UNKNOWN_CODE` (0), so the model learns what to do with them.
    Other columns pass through unchanged.
    """

    def __init__(self, columns: Sequence[str] = (), min_count: int = 1):
        self.columns = columns
        self.min_count = min_count

    def fit(self, X: pd.DataFrame, y: object = None) -> CategoryCodes:
        missing = [c for c in self.columns if c not in X]
        if missing:
            raise ValueError(f"categorical column(s) {missing} are missing from the frame")
        self.vocabularies_ = {}
        for column in self.columns:
            counts = _as_text(X[column]).value_counts()
            kept = sorted(counts.index[counts >= self.min_count])
            self.vocabularies_[column] = pd.Index(kept, dtype=object)
        return self

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        codes = {
            column: (vocabulary.get_indexer(_as_text(X[column]).to_numpy()) + 1).astype(np.int32)
            for column, vocabulary in self.vocabularies_.items()
        }
        # get_indexer gives -1 for unseen values, so +1 lands them on UNKNOWN_CODE.
        return X.assign(**codes)

    def known_shares(self, X: pd.DataFrame) -> dict[str, float]:
        """Per encoded column present in ``X``: the share of rows whose value has a code of its
        own (not :data:`UNKNOWN_CODE`); columns of an empty ``X`` are left out."""
        if X.empty:
            return {}
        return {
            column: float((vocabulary.get_indexer(_as_text(X[column]).to_numpy()) >= 0).mean())
            for column, vocabulary in self.vocabularies_.items()
            if column in X
        }


def _as_text(values: pd.Series) -> pd.Series:
    return values.astype(object).where(values.notna(), MISSING).astype(str)
