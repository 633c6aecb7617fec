"""The propensity model: how likely the historical routing was to choose each candidate rep.

Logged propensities are used as they are; where the log has none, :func:`estimate_propensities`
fits a conditional logit of the historical choice (:class:`ChoiceModel`) over the candidate sets
of :func:`evaluation.off_policy.logged.historical_candidates`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import minimize
from sklearn.base import BaseEstimator

from evaluation.config import OffPolicyConfig
from evaluation.off_policy._frames import examples, pair_keys, require
from evaluation.off_policy.logged import CHOICE_PAIR_COLUMNS
from features.leads import is_number
from features.schemas import Leads, Reps


class ChoiceModel(BaseEstimator):
    """Conditional logit of the historical routing: which of its candidate reps got the lead?

    For lead l with candidate set C_l, ``P(r | l) = exp(u_lr) / sum_{s in C_l} exp(u_ls)`` with
    ``u_lr = beta . pair_lr + gamma_r . (1, lead_l)``: pair columns (region or skill match,
    tenure) with shared coefficients, and for every rep an intercept and a slope on each lead
    column (a senior rep getting the valuable leads). Columns are standardised at fit time,
    missing values count as the mean, and the coefficients carry an L2 penalty ``alpha``.
    Reps unseen at fit time get no rep term.

    Learned state: ``rep_ids_`` (reps with a term), ``pair_coef_``, ``rep_coef_`` (n_reps x
    (1 + n lead columns)), ``pair_mean_``/``pair_scale_``, ``lead_mean_``/``lead_scale_``,
    ``n_leads_``, ``log_likelihood_`` (mean per lead at the optimum), ``converged_``.
    """

    def __init__(
        self,
        pair_columns: tuple[str, ...] = (),
        lead_columns: tuple[str, ...] = (),
        alpha: float = 1.0,
        max_iter: int = 500,
    ):
        self.pair_columns = pair_columns
        self.lead_columns = lead_columns
        self.alpha = alpha
        self.max_iter = max_iter

    def fit(
        self, candidates: pd.DataFrame, chosen: np.ndarray | pd.Series | None = None
    ) -> ChoiceModel:
        """Fit on candidate pairs: ``lead_id``, ``rep_id``, the model's columns and ``chosen``
        (bool, exactly one per lead; or pass ``chosen``). Returns self."""
        if self.alpha <= 0:
            raise ValueError(f"alpha must be > 0, got {self.alpha}")
        require(
            candidates,
            [Leads.lead_id, Reps.rep_id, *self.pair_columns, *self.lead_columns],
            "candidates",
        )
        y = np.asarray(candidates["chosen"] if chosen is None else chosen, dtype=bool)
        if len(y) != len(candidates):
            raise ValueError(f"chosen has {len(y)} values for {len(candidates)} candidate pairs")
        if len(candidates) == 0:
            raise ValueError("no candidate pairs to learn the historical choices from")
        order, starts, group = _groups(candidates[Leads.lead_id])
        per_lead = np.add.reduceat(y[order].astype(int), starts)
        if (per_lead != 1).any():
            bad = candidates[Leads.lead_id].to_numpy(dtype=object)[order][starts][per_lead != 1]
            raise ValueError(
                f"{len(bad)} lead(s) do not have exactly one chosen candidate, e.g. {list(bad[:5])}"
            )
        pair = _numeric(candidates, self.pair_columns)
        lead = _numeric(candidates, self.lead_columns)
        self.pair_mean_, self.pair_scale_ = _moments(pair)
        self.lead_mean_, self.lead_scale_ = _moments(lead)
        self.rep_ids_ = np.array(sorted(set(candidates[Reps.rep_id].astype("str"))), dtype=object)
        design = self._design(candidates, pair, lead)
        n_pair, n_rep_terms = pair.shape[1], len(self.rep_ids_) * (1 + lead.shape[1])
        y_sorted = y[order]

        def loss(theta: np.ndarray) -> tuple[float, np.ndarray]:
            u = design @ theta
            log_norm, p = _group_softmax(u[order], starts, group)
            value = log_norm.sum() - u[order][y_sorted].sum() + 0.5 * self.alpha * theta @ theta
            residual = np.empty(len(u))
            residual[order] = p - y_sorted
            return value / len(starts), (design.T @ residual + self.alpha * theta) / len(starts)

        fit = minimize(
            loss,
            np.zeros(n_pair + n_rep_terms),
            jac=True,
            method="L-BFGS-B",
            options={"maxiter": self.max_iter},
        )
        self.pair_coef_ = fit.x[:n_pair]
        self.rep_coef_ = fit.x[n_pair:].reshape(len(self.rep_ids_), 1 + lead.shape[1])
        self.n_leads_ = len(starts)
        self.log_likelihood_ = -float(fit.fun) + 0.5 * self.alpha * fit.x @ fit.x / len(starts)
        self.converged_ = bool(fit.success)
        return self

    def predict_proba(self, candidates: pd.DataFrame) -> np.ndarray:
        """P(rep | lead, its candidate set) of every candidate pair (sums to 1 over each lead's
        rows), in the order of ``candidates``."""
        require(
            candidates,
            [Leads.lead_id, Reps.rep_id, *self.pair_columns, *self.lead_columns],
            "candidates",
        )
        pair = _numeric(candidates, self.pair_columns)
        lead = _numeric(candidates, self.lead_columns)
        theta = np.concatenate([self.pair_coef_, self.rep_coef_.ravel()])
        u = self._design(candidates, pair, lead) @ theta
        order, starts, group = _groups(candidates[Leads.lead_id])
        out = np.empty(len(u))
        out[order] = _group_softmax(u[order], starts, group)[1]
        return out

    def _design(
        self, candidates: pd.DataFrame, pair: np.ndarray, lead: np.ndarray
    ) -> sparse.csr_matrix:
        """Sparse design: standardised pair columns, then each rep's block (1, lead columns)."""
        pair = np.nan_to_num((pair - self.pair_mean_) / self.pair_scale_, nan=0.0)
        lead = np.nan_to_num((lead - self.lead_mean_) / self.lead_scale_, nan=0.0)
        per_rep = 1 + lead.shape[1]
        rep_pos = pd.Index(self.rep_ids_).get_indexer(candidates[Reps.rep_id].astype("str"))
        known = rep_pos >= 0
        rows = np.repeat(np.flatnonzero(known), per_rep)
        cols = (rep_pos[known, None] * per_rep + np.arange(per_rep)[None, :]).ravel()
        values = np.column_stack([np.ones(len(lead)), lead])[known].ravel()
        rep_block = sparse.csr_matrix(
            (values, (rows, cols)), shape=(len(candidates), len(self.rep_ids_) * per_rep)
        )
        return sparse.hstack([sparse.csr_matrix(pair), rep_block], format="csr")


def estimate_propensities(
    decisions: pd.DataFrame, candidates: pd.DataFrame, *, config: OffPolicyConfig | None = None
) -> pd.DataFrame:
    """``candidates`` with ``propensity``: the estimated probability that the historical routing
    chose each candidate rep for its lead (raw, not clipped; sums to 1 over a lead's rows).

    ``decisions`` (``lead_id``, ``rep_id``: the logged choices; all of them may be used, mature
    or not, since no outcome is needed) teach a :class:`ChoiceModel` on the candidates of their
    leads; ``candidates`` carries :func:`choice_features` (the :data:`CHOICE_PAIR_COLUMNS`,
    ``lead_log_value`` and numeric ``x_*`` columns present are used). Candidates of leads without
    a decision are scored too. An existing ``propensity`` column is replaced.
    """
    config = config or OffPolicyConfig()
    require(decisions, [Leads.lead_id, Reps.rep_id], "decisions")
    require(candidates, [Leads.lead_id, Reps.rep_id], "candidates")
    pair_columns = tuple(c for c in CHOICE_PAIR_COLUMNS if c in candidates)
    lead_columns = tuple(
        c
        for c in candidates.columns
        if (c == "lead_log_value" or str(c).startswith("x_")) and is_number(candidates[c])
    )
    keys = pair_keys(candidates)
    chosen = keys.isin(pair_keys(decisions))
    taught = candidates[Leads.lead_id].isin(decisions[Leads.lead_id]).to_numpy()
    missing = ~pair_keys(decisions).isin(keys)
    if missing.any():
        raise ValueError(
            f"{int(missing.sum())} logged choice(s) are not among their lead's candidates, e.g. "
            f"{examples(decisions.loc[missing])}: build candidates with historical_candidates"
        )
    model = ChoiceModel(pair_columns, lead_columns, alpha=config.choice_alpha)
    model.fit(candidates.loc[taught], chosen[taught])
    return candidates.assign(propensity=model.predict_proba(candidates))


def _numeric(frame: pd.DataFrame, columns: tuple[str, ...]) -> np.ndarray:
    if not columns:
        return np.empty((len(frame), 0))
    return np.column_stack(
        [pd.to_numeric(frame[c]).to_numpy(dtype=float, na_value=np.nan) for c in columns]
    )


def _moments(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Column means and standard deviations, ignoring NaN; a constant column gets scale 1."""
    if values.shape[1] == 0:
        return np.empty(0), np.empty(0)
    with np.errstate(invalid="ignore"):
        mean = np.nan_to_num(np.nanmean(values, axis=0) if len(values) else 0.0)
        scale = np.nan_to_num(np.nanstd(values, axis=0) if len(values) else 1.0)
    return mean, np.where(scale > 0, scale, 1.0)


def _groups(lead_ids: pd.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows sorted by lead (stable), where each lead's block starts, and the block number of
    each sorted row."""
    codes, uniques = pd.factorize(lead_ids.astype("str"))
    order = np.argsort(codes, kind="stable")
    group = codes[order]
    return order, np.searchsorted(group, np.arange(len(uniques))), group


def _group_softmax(
    u: np.ndarray, starts: np.ndarray, group: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Log normaliser of each group and the softmax of ``u`` within groups (rows sorted)."""
    if len(u) == 0:
        return np.empty(0), np.empty(0)
    top = np.maximum.reduceat(u, starts)
    e = np.exp(u - top[group])
    total = np.add.reduceat(e, starts)
    return top + np.log(total), e / total[group]
