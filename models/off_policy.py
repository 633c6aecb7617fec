"""Off-policy evaluation: what would a routing policy have won on the logged CRM history?

The history is a log of decisions: each lead was handed to one rep, chosen by the routing policy
of the time (rules, round-robin, a manager) with some probability (the *propensity*), and then
won or not. A *target* policy (leadmatch's, round-robin, ...) would have chosen differently. Its
value on these leads, in expected wins per lead (or deal value per lead), is estimated by

- ``dm``, the direct method: the model's own prediction of what the target's choices win,
  ``mean_i sum_r pi(r|i) q(i, r)``. It is only as good as the model q, and no outcome checks it;
- ``ips``: inverse propensity weighting, ``mean_i w_i y_i`` with ``w_i = pi(a_i|i) / mu(a_i|i)``
  (a_i the logged rep, mu the logging policy): unbiased when the propensities are right;
- ``snips``: self-normalised IPS, ``sum w_i y_i / sum w_i``: a little bias, far less variance;
- ``dr``, doubly robust: ``dm`` plus the weighted residuals ``mean_i w_i (y_i - q(i, a_i))``;
  unbiased when either the propensities or the model are right;
- ``sndr``: ``dm`` plus the self-normalised weighted residuals.

``logged`` is the historical policy's own value (the plain mean of the outcomes), and every
estimate comes with its difference from it; intervals are percentile bootstraps over clusters of
leads (the lead's account when known: leads of one account win and lose together), with the
same resamples for an estimate and its difference. Propensities and the model are held fixed
in the bootstrap.

The estimand is per decision: each lead is given the same moment, candidates and rep loads it
had in the history. What a policy would change *through* load (a rep overloaded by the new
policy's choices, capacity used up by earlier leads) is outside it: judge that with the
simulator's backtest.

Identification. Weights only reach leads where the history did what the target would do. When
that overlap is too thin, the estimate is not identified: ``identified`` is False, the number is
left out of :attr:`OffPolicyResult.estimates` (it is kept in ``raw`` for research only) and the
note says why. The rules (thresholds in :class:`OffPolicyConfig`):

1. the effective sample size of the weights (Kish, ``(sum w)^2 / sum w^2``) is below
   ``min_ess`` (50): the estimate would rest on a handful of leads, and its interval is too
   narrow (in the estimator check, 95% intervals with 30-50 effective leads covered the truth
   82-86% of the time, under 30 only 67-75%; from 50 on, 94-99%);
2. the target agrees with the history on less than ``min_agreement`` (1%) of the leads
   (``mean_i pi(a_i|i)``): whatever the weights say, they stand on a sliver of the history;
3. when the logging policy's probability of every candidate is known (estimated), more than
   ``max_unsupported_share`` (10%) of the target's choices go to (lead, rep) pairs the history
   chose with probability below ``low_propensity`` (1%): the history holds under one example in
   a hundred of such choices, so their weights are huge or clipped, and where the true
   propensity is zero (a hard routing rule) no weight can see that part at all.

The direct method gets the same verdict: where the history holds no comparable decisions, its
number is the model's belief, not evidence.

The model and the target. Neither the model q nor the target policy may have learned from the
outcomes being evaluated: a policy chosen by a model fitted on these very outcomes picks the
logged pairs that happened to win, and every estimator then reports that luck as skill. Fit the
model on an earlier period, or cross-fit (:func:`cross_fit_folds`: each fold of accounts is
scored, and its policy chosen, by a model trained without it). On the Maven sample, a greedy
policy on an in-sample model "won" +0.21 per lead more than the history by DR; cross-fitted,
-0.03 with an interval across zero.

Propensities. Logged ones are used as they are. Where they are missing, the probability of each
candidate comes from :func:`estimate_propensities`, a conditional logit of the historical choice
(:class:`ChoiceModel`) over candidate sets reconstructed by :func:`historical_candidates`; they
are clipped below at ``propensity_floor`` and the result counts how many were.

Typical use::

    decisions = logged_decisions(data, window_days=90)
    candidates = choice_features(data, historical_candidates(data, decisions))
    candidates = estimate_propensities(decisions, candidates)      # if the log lacks them
    folds = cross_fit_folds(decisions)      # lead_id -> fold
    candidates["q"] = ...                   # P(win) of every candidate pair, out of fold
    target = ...                            # lead_id, rep_id, prob; chosen out of fold
    result = evaluate_policy(decisions[decisions["mature"]], candidates, target)
    print(result.summary())

Pure: no I/O.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
import pandas as pd
from scipy import sparse
from scipy.optimize import minimize
from sklearn.base import BaseEstimator

from features.pairs import default_as_of
from features.reps import outcome_events
from features.schemas import CrmData
from models.config import OffPolicyConfig

ESTIMATORS = ("logged", "dm", "ips", "snips", "dr", "sndr")
"""Row order of the estimates frame; ``logged`` is the historical policy's on-policy value."""

ESTIMATOR_NAMES = {
    "logged": "historical policy (observed mean)",
    "dm": "direct method (model only)",
    "ips": "inverse propensity",
    "snips": "self-normalised inverse propensity",
    "dr": "doubly robust",
    "sndr": "doubly robust, self-normalised weights",
}

ESTIMATE_COLUMNS = [
    "estimator",
    "value",
    "ci_low",
    "ci_high",
    "vs_logged",
    "vs_logged_low",
    "vs_logged_high",
    "identified",
    "note",
]

CHOICE_PAIR_COLUMNS = (
    "region_match",
    "skill_match_industry",
    "skill_match_product",
    "rep_log_tenure",
    "rep_log_tenure_x_value",
)
"""Pair columns of :func:`choice_features` that the propensity model uses."""

_NS_PER_DAY = 86_400 * 10**9
_SUM_TOLERANCE = 1e-6
# Bootstrap resamples are drawn in blocks so that the count matrix stays near 20M cells.
_BOOTSTRAP_CELLS = 20_000_000


# --- the logged decisions and their candidate reps ---------------------------------------------


def logged_decisions(
    data: CrmData,
    *,
    as_of: pd.Timestamp | None = None,
    window_days: int = 90,
    reward: Literal["won", "value"] = "won",
) -> pd.DataFrame:
    """The routing decisions of the history: each lead's first assignment, with its outcome.

    ``data`` holds validated canonical tables; ``as_of`` (default: midnight after the last
    recorded event) is when the history was exported. A decision is ``mature`` when its whole
    conversion window has passed by ``as_of``: only then is its outcome final and an unbiased
    draw (recent decisions over-represent quick losses). Later reassignments of a lead are not
    decisions of the routing policy and are left out.

    Returns one row per assigned lead, in assignment order: ``lead_id``, ``rep_id``, ``at``
    (assigned_at), ``propensity`` (float, NaN where not logged), ``cluster`` (the lead's
    account_id, or its lead_id when it has none), ``mature`` (bool) and ``reward`` (float, NaN
    unless mature): 1.0 if won within ``window_days``, else 0.0; with ``reward="value"`` the
    deal value of such a win instead of 1.0.
    """
    if window_days <= 0:
        raise ValueError(f"window_days must be > 0, got {window_days}")
    if reward not in ("won", "value"):
        raise ValueError(f"reward must be 'won' or 'value', got {reward!r}")
    as_of = default_as_of(data) if as_of is None else pd.Timestamp(as_of)
    # An outcome with no rep was routed to nobody: it is not a decision of the routing policy.
    owned = data.assignments[data.assignments["rep_id"].notna()]
    asg = owned.sort_values(["assigned_at", "lead_id"], kind="stable")
    first = asg.drop_duplicates("lead_id", keep="first")
    won = outcome_events(first, window_days=window_days)["won_in_window"].to_numpy() == 1
    mature = (first["assigned_at"] + pd.Timedelta(days=window_days) <= as_of).to_numpy()
    if reward == "value":
        gain = pd.to_numeric(first["deal_value"]).to_numpy(dtype=float, na_value=np.nan)
        gain = np.where(won, np.nan_to_num(gain, nan=0.0), 0.0)
    else:
        gain = won.astype(float)
    if "propensity" in first:
        propensity = pd.to_numeric(first["propensity"]).to_numpy(dtype=float, na_value=np.nan)
    else:
        propensity = np.full(len(first), np.nan)
    lead_ids = first["lead_id"].astype("str").to_numpy(dtype=object)
    cluster = lead_ids
    if "account_id" in data.leads:
        accounts = data.leads.drop_duplicates("lead_id").set_index("lead_id")["account_id"]
        account = accounts.reindex(lead_ids).to_numpy(dtype=object)
        cluster = np.where(pd.isna(account), lead_ids, "account:" + account.astype(str))
    return pd.DataFrame(
        {
            "lead_id": pd.array(lead_ids, dtype="str"),
            "rep_id": pd.array(first["rep_id"].astype("str").to_numpy(dtype=object), dtype="str"),
            "at": first["assigned_at"].to_numpy(dtype="datetime64[ns]"),
            "propensity": propensity,
            "cluster": pd.array(cluster, dtype="str"),
            "mature": mature,
            "reward": np.where(mature, gain, np.nan),
        }
    )


def historical_candidates(data: CrmData, decisions: pd.DataFrame) -> pd.DataFrame:
    """The reps that could have taken each logged decision, reconstructed from the tables.

    ``decisions`` has ``lead_id``, ``rep_id`` (the rep chosen) and ``at``. A rep is a candidate
    at time ``at`` on day ``d`` when it was employed (hired on or before ``d``; a rep no longer
    active counts as employed up to the day of its last assignment), available that day (the
    availability table), under that day's capacity (its assignments earlier that day, from
    ``d``'s midnight up to the decision in routing order: by time, then table order) and, with
    ``max_open_leads``, its open leads at the start of the day plus that day's assignments are
    under the cap. This is the eligibility a capacity-aware router applies; on the simulator it
    reproduces the routing's candidate sets, except on a departed rep's last days without an
    assignment (the tables hold no leave date), where that rep is left out.

    The logged rep is always a candidate (an override, a rule outside the tables): ``eligible``
    is False on such rows, and their share tells how far the reconstruction can be trusted.
    Returns ``lead_id``, ``rep_id``, ``at``, ``eligible`` (bool), in decision order then
    ``data.reps`` order.
    """
    _require(decisions, ["lead_id", "rep_id", "at"], "decisions")
    reps = data.reps.reset_index(drop=True)
    asg = data.assignments
    at = _as_ns(decisions["at"])
    if (at == _NAT).any():
        raise ValueError("decisions must have a time 'at' on every row")
    day = at - at % _NS_PER_DAY
    # Assignments in routing order: by time, then table order (routers stamp several leads
    # with the same second). A decision's place in that order counts what came before it.
    assigned_ns = _as_ns(asg["assigned_at"])
    order = np.argsort(assigned_ns, kind="stable")
    sequence = np.empty(len(order), dtype=float)
    sequence[order] = np.arange(len(order))
    sorted_ns = assigned_ns[order]
    row_of = pd.Series(sequence, index=_pair_keys(asg) + "\x1f" + assigned_ns.astype(str))
    row_of = row_of[~row_of.index.duplicated()]
    place = row_of.reindex(_pair_keys(decisions) + "\x1f" + at.astype(str)).to_numpy()
    # A decision missing from the table comes before everything stamped at its time.
    place = np.where(np.isnan(place), np.searchsorted(sorted_ns, at, side="left") - 0.5, place)
    day_place = np.searchsorted(sorted_ns, day, side="left") - 0.5
    eligible = np.zeros((len(decisions), len(reps)), dtype=bool)
    rep_of_row = asg["rep_id"].astype("str").to_numpy(dtype=object)
    availability = data.availability
    for j, rep in enumerate(reps["rep_id"].astype("str")):
        mine = rep_of_row == rep
        places = np.sort(sequence[mine])
        closed = np.sort(_as_ns(asg.loc[mine, "closed_at"]))
        closed = closed[closed != _NAT]
        hired = _as_ns(reps.loc[[j], "hire_date"])[0]
        employed = hired - hired % _NS_PER_DAY <= day
        if not bool(reps.loc[j, "active"]):
            last = assigned_ns[mine].max() if mine.any() else _NAT
            employed &= day <= last - last % _NS_PER_DAY
        capacity = np.full(len(day), float(reps.loc[j, "daily_capacity"]))
        available = np.ones(len(day), dtype=bool)
        if availability is not None:
            rows = availability.loc[availability["rep_id"].astype("str") == rep]
            dates = _as_ns(rows["date"])
            known = pd.Series(np.arange(len(rows)), index=dates - dates % _NS_PER_DAY)
            position = known.reindex(day).to_numpy()
            hit = ~np.isnan(position)
            hit_rows = position[hit].astype(int)
            available[hit] = rows["available"].to_numpy(dtype=bool)[hit_rows]
            if "capacity" in rows:
                override = pd.to_numeric(rows["capacity"]).to_numpy(dtype=float, na_value=np.nan)
                capacity[hit] = np.where(
                    np.isnan(override[hit_rows]), capacity[hit], override[hit_rows]
                )
        before_today = np.searchsorted(places, day_place)
        used_today = np.searchsorted(places, place) - before_today
        ok = employed & available & (used_today < capacity)
        if "max_open_leads" in reps and pd.notna(reps.loc[j, "max_open_leads"]):
            open_at_start = before_today - np.searchsorted(closed, day, side="left")
            ok &= open_at_start + used_today < float(reps.loc[j, "max_open_leads"])
        eligible[:, j] = ok
    chosen = pd.Index(reps["rep_id"].astype("str")).get_indexer(decisions["rep_id"].astype("str"))
    if (chosen < 0).any():
        unknown = decisions["rep_id"].to_numpy(dtype=object)[chosen < 0]
        raise ValueError(
            f"{int((chosen < 0).sum())} decision(s) name reps missing from the reps table, e.g. "
            f"{list(dict.fromkeys(unknown))[:5]}"
        )
    include = eligible.copy()
    include[np.arange(len(decisions)), chosen] = True
    row, col = np.nonzero(include)
    return pd.DataFrame(
        {
            "lead_id": pd.array(decisions["lead_id"].astype("str").to_numpy()[row], dtype="str"),
            "rep_id": pd.array(reps["rep_id"].astype("str").to_numpy()[col], dtype="str"),
            "at": at[row].view("datetime64[ns]"),
            "eligible": eligible[row, col],
        }
    )


def choice_features(data: CrmData, candidates: pd.DataFrame) -> pd.DataFrame:
    """What a historical router could see of each candidate pair, for :class:`ChoiceModel`.

    ``candidates`` has ``lead_id``, ``rep_id`` and ``at``. Returns it with: ``region_match``,
    ``skill_match_industry`` and ``skill_match_product`` (1.0 when the lead's region is the rep's,
    or its industry / product is one of the rep's ';'-separated skills), ``rep_log_tenure``
    (log(1 + years since hire) at ``at``), ``lead_log_value`` (log(1 + expected_value), NaN when
    unknown), ``rep_log_tenure_x_value`` (tenure times the lead's log value, centred: routers
    give senior reps the valuable leads) and every numeric ``x_*`` lead column as it is.
    """
    _require(candidates, ["lead_id", "rep_id", "at"], "candidates")
    leads = data.leads.drop_duplicates("lead_id").set_index("lead_id")
    reps = data.reps.drop_duplicates("rep_id").set_index("rep_id")
    lead_ids = candidates["lead_id"].astype("str").to_numpy(dtype=object)
    rep_ids = candidates["rep_id"].astype("str").to_numpy(dtype=object)
    lead_pos = leads.index.get_indexer(lead_ids)
    rep_pos = reps.index.get_indexer(rep_ids)
    if (lead_pos < 0).any() or (rep_pos < 0).any():
        raise ValueError(
            "candidates name leads or reps missing from the data: "
            f"{int((lead_pos < 0).sum())} unknown lead(s), {int((rep_pos < 0).sum())} unknown rep(s)"
        )
    lead_rows = leads.iloc[lead_pos]
    rep_rows = reps.iloc[rep_pos]

    def column(frame: pd.DataFrame, name: str) -> np.ndarray:
        if name not in frame:
            return np.full(len(frame), None, dtype=object)
        return frame[name].astype("object").to_numpy()

    lead_region, rep_region = column(lead_rows, "region"), column(rep_rows, "region")
    out = {"region_match": (pd.notna(lead_region) & (lead_region == rep_region)).astype(float)}
    skills = pd.Series(column(rep_rows, "skills")).fillna("").astype(str).str.lower()
    rep_tags = skills.str.split(";").map(lambda tags: {t.strip() for t in tags if t.strip()})
    for name in ("industry", "product"):
        values = pd.Series(column(lead_rows, name)).fillna("").astype(str).str.strip().str.lower()
        out[f"skill_match_{name}"] = np.array(
            [v != "" and v in tags for v, tags in zip(values, rep_tags, strict=True)], dtype=float
        )
    tenure_years = (_as_ns(candidates["at"]) - _as_ns(rep_rows["hire_date"])) / _NS_PER_DAY / 365.25
    out["rep_log_tenure"] = np.log1p(np.maximum(tenure_years, 0.0))
    if "expected_value" in lead_rows:
        value = pd.to_numeric(lead_rows["expected_value"]).to_numpy(dtype=float, na_value=np.nan)
        log_value = np.log1p(np.maximum(value, 0.0))
    else:
        log_value = np.full(len(candidates), np.nan)
    out["lead_log_value"] = log_value
    # Centred so the interaction does not duplicate the tenure column; unknown values count as
    # the mean.
    known = np.isfinite(log_value)
    centre = log_value[known].mean() if known.any() else 0.0
    out["rep_log_tenure_x_value"] = out["rep_log_tenure"] * np.where(known, log_value - centre, 0)
    for name in lead_rows.columns:
        if str(name).startswith("x_") and _is_number(lead_rows[name]):
            out[str(name)] = pd.to_numeric(lead_rows[name]).to_numpy(dtype=float, na_value=np.nan)
    return pd.concat([candidates.reset_index(drop=True), pd.DataFrame(out)], axis=1).set_axis(
        candidates.index
    )


def cross_fit_folds(decisions: pd.DataFrame, n_folds: int = 2, seed: int = 0) -> pd.Series:
    """A fold (0 to n_folds - 1) for every decision's lead, drawn per ``cluster`` (so an
    account's leads share a fold), for cross-fitting the model and the target policy.

    ``decisions`` has ``lead_id`` and optionally ``cluster`` (default: each lead its own).
    Returns an int Series indexed by lead_id: score the leads of fold k, and choose their
    target, with a model trained on the other folds' outcomes only.
    """
    if n_folds < 2:
        raise ValueError(f"n_folds must be at least 2, got {n_folds}")
    _require(decisions, ["lead_id"], "decisions")
    cluster = decisions["cluster"] if "cluster" in decisions else decisions["lead_id"]
    codes, names = pd.factorize(cluster.astype("str"))
    fold = np.random.default_rng(seed).integers(0, n_folds, len(names))[codes]
    return pd.Series(fold, index=pd.Index(decisions["lead_id"].astype("str"), name="lead_id"))


# --- the propensity model ----------------------------------------------------------------------


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
        _require(
            candidates, ["lead_id", "rep_id", *self.pair_columns, *self.lead_columns], "candidates"
        )
        y = np.asarray(candidates["chosen"] if chosen is None else chosen, dtype=bool)
        if len(y) != len(candidates):
            raise ValueError(f"chosen has {len(y)} values for {len(candidates)} candidate pairs")
        if len(candidates) == 0:
            raise ValueError("no candidate pairs to learn the historical choices from")
        order, starts, group = _groups(candidates["lead_id"])
        per_lead = np.add.reduceat(y[order].astype(int), starts)
        if (per_lead != 1).any():
            bad = candidates["lead_id"].to_numpy(dtype=object)[order][starts][per_lead != 1]
            raise ValueError(
                f"{len(bad)} lead(s) do not have exactly one chosen candidate, e.g. {list(bad[:5])}"
            )
        pair = _numeric(candidates, self.pair_columns)
        lead = _numeric(candidates, self.lead_columns)
        self.pair_mean_, self.pair_scale_ = _moments(pair)
        self.lead_mean_, self.lead_scale_ = _moments(lead)
        self.rep_ids_ = np.array(sorted(set(candidates["rep_id"].astype("str"))), dtype=object)
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
        _require(
            candidates, ["lead_id", "rep_id", *self.pair_columns, *self.lead_columns], "candidates"
        )
        pair = _numeric(candidates, self.pair_columns)
        lead = _numeric(candidates, self.lead_columns)
        theta = np.concatenate([self.pair_coef_, self.rep_coef_.ravel()])
        u = self._design(candidates, pair, lead) @ theta
        order, starts, group = _groups(candidates["lead_id"])
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
        rep_pos = pd.Index(self.rep_ids_).get_indexer(candidates["rep_id"].astype("str"))
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
    _require(decisions, ["lead_id", "rep_id"], "decisions")
    _require(candidates, ["lead_id", "rep_id"], "candidates")
    pair_columns = tuple(c for c in CHOICE_PAIR_COLUMNS if c in candidates)
    lead_columns = tuple(
        c
        for c in candidates.columns
        if (c == "lead_log_value" or str(c).startswith("x_")) and _is_number(candidates[c])
    )
    keys = _pair_keys(candidates)
    chosen = keys.isin(_pair_keys(decisions))
    taught = candidates["lead_id"].isin(decisions["lead_id"]).to_numpy()
    missing = ~_pair_keys(decisions).isin(keys)
    if missing.any():
        raise ValueError(
            f"{int(missing.sum())} logged choice(s) are not among their lead's candidates, e.g. "
            f"{_examples(decisions.loc[missing])}: build candidates with historical_candidates"
        )
    model = ChoiceModel(pair_columns, lead_columns, alpha=config.choice_alpha)
    model.fit(candidates.loc[taught], chosen[taught])
    return candidates.assign(propensity=model.predict_proba(candidates))


# --- the estimators ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Overlap:
    """How well the history covers the target policy.

    ``n_decisions`` logged leads in ``n_clusters`` bootstrap clusters; ``low_propensity``: the
    threshold of the rare-choice figures (``OffPolicyConfig.low_propensity``); ``ess``: Kish effective
    sample size of the importance weights, ``ess_share`` = ess / n_decisions; ``agreement``: mean
    probability the target gives the logged rep (for a deterministic target, the share of leads
    where it picks the logged rep); ``low_propensity_share``: share of logged choices whose
    propensity (before clipping) is below ``OffPolicyConfig.low_propensity``;
    ``unsupported_share``: the target's share of choices on pairs the history chose with
    probability below that (NaN unless candidate propensities are known);
    ``outside_rules_share``: share of logged choices that the reconstructed eligibility rules
    would not have allowed (candidates' ``eligible`` column; NaN without it): the larger, the
    less the candidate sets and estimated propensities can be trusted; ``max_weight`` and
    ``max_weight_share`` (of the sum of weights); ``propensity_source`` ("logged", "estimated" or
    "logged and estimated"), ``n_estimated`` decisions using estimated propensities, of which
    ``n_clipped`` were clipped at the floor.
    """

    n_decisions: int
    n_clusters: int
    low_propensity: float
    ess: float
    ess_share: float
    agreement: float
    low_propensity_share: float
    unsupported_share: float
    outside_rules_share: float
    max_weight: float
    max_weight_share: float
    propensity_source: str
    n_estimated: int
    n_clipped: int

    def to_dict(self) -> dict[str, object]:
        """Flat mapping, for a tracking server or a report."""
        return asdict(self)


@dataclass(frozen=True)
class OffPolicyResult:
    """What :func:`evaluate_policy` found.

    ``estimates``: one row per estimator of :data:`ESTIMATORS` with columns
    :data:`ESTIMATE_COLUMNS`: ``value`` (expected reward per lead, the unit of ``reward``),
    ``ci_low``/``ci_high`` (bootstrap interval at ``level``), ``vs_logged`` (value minus the
    historical policy's) with its interval, ``identified`` and ``note`` (why not identified, or
    what the number rests on). The numbers of an unidentified estimate are NaN: do not print
    them. ``raw`` has the same rows with every number, for estimator research only.
    """

    estimates: pd.DataFrame
    raw: pd.DataFrame
    overlap: Overlap
    level: float
    n_bootstrap: int

    @property
    def identified(self) -> bool:
        """Whether the off-policy estimates are identified (they share one verdict)."""
        return bool(self.estimates.loc[self.estimates["estimator"] == "dr", "identified"].iloc[0])

    def summary(self) -> str:
        """Plain-text lines for logs and reports: one per estimator, then the overlap."""
        lines = []
        for row in self.estimates.itertuples(index=False):
            name = ESTIMATOR_NAMES[row.estimator]
            if not row.identified:
                lines.append(f"{name}: not identified. {row.note}")
                continue
            text = f"{name}: {row.value:.4g} per lead [{row.ci_low:.4g}, {row.ci_high:.4g}]"
            if row.estimator != "logged":
                text += (
                    f", {row.vs_logged:+.4g} vs history "
                    f"[{row.vs_logged_low:+.4g}, {row.vs_logged_high:+.4g}]"
                )
            lines.append(text + (f" ({row.note})" if row.note else ""))
        o = self.overlap
        rare = f"{o.low_propensity:.0%}"
        parts = [
            f"overlap: effective sample {o.ess:.0f} of {o.n_decisions} leads ({o.ess_share:.1%})",
            f"target agrees with history on {o.agreement:.1%}",
            f"{o.low_propensity_share:.1%} of logged choices had propensity under {rare}",
            f"largest weight {o.max_weight:.3g} ({o.max_weight_share:.1%} of the total)",
        ]
        if not np.isnan(o.unsupported_share):
            parts.append(
                f"{o.unsupported_share:.1%} of the target's choices had propensity under {rare}"
            )
        if not np.isnan(o.outside_rules_share):
            parts.append(
                f"{o.outside_rules_share:.1%} of logged choices broke the eligibility rules"
            )
        source = f"propensities {o.propensity_source}"
        if o.n_estimated:
            source += f" ({o.n_clipped} of {o.n_estimated} estimated ones clipped)"
        lines.append(", ".join(parts) + "; " + source)
        return "\n".join(lines)


def evaluate_policy(
    logged: pd.DataFrame,
    candidates: pd.DataFrame,
    target: pd.DataFrame,
    *,
    config: OffPolicyConfig | None = None,
) -> OffPolicyResult:
    """Estimate the value of the ``target`` policy on the ``logged`` decisions.

    ``logged``: one row per decision: ``lead_id`` (unique), ``rep_id`` (the rep chosen),
    ``reward`` (float: won 0/1, or deal value), ``propensity`` (optional, in (0, 1], NaN where not
    logged) and ``cluster`` (optional bootstrap cluster, e.g. the account; default the lead).
    ``candidates``: one row per (lead, rep) the target could have chosen, every logged choice
    included: ``lead_id``, ``rep_id``, ``q`` (the model's expected reward of the pair, same unit
    as ``reward``) and optionally ``propensity`` (the logging policy's probability of each
    candidate, e.g. from :func:`estimate_propensities`; used where the log has none, and for the
    support check). ``target``: ``lead_id``, ``rep_id``, ``prob`` (>= 0, summing to 1 over each
    logged lead; a deterministic policy has one row per lead with prob 1), on candidate pairs.
    Rows of candidates and target for leads not in ``logged`` are ignored.

    Raises ``ValueError`` naming the problem for a missing column, a duplicated lead or pair, a
    propensity outside (0, 1], a logged choice or target pair that is not a candidate, target
    probabilities that do not sum to 1, or a decision without any propensity.
    """
    config = config or OffPolicyConfig()
    decisions = _decision_arrays(logged, candidates, target, config)
    w, y, q_logged, dm = decisions["w"], decisions["y"], decisions["q_logged"], decisions["dm"]
    clusters = pd.factorize(decisions["cluster"])[0]
    per_lead = np.column_stack([np.ones(len(y)), y, dm, w, w * y, w * (y - q_logged)])
    sums = np.zeros((clusters.max() + 1, per_lead.shape[1]))
    np.add.at(sums, clusters, per_lead)
    point = _estimates(sums.sum(axis=0, keepdims=True))[0]
    draws = _bootstrap(sums, config)
    overlap = _overlap(decisions, config, n_clusters=len(sums))
    reasons = _not_identified(overlap, config)
    alpha = (1 - config.level) / 2
    rows = []
    for k, name in enumerate(ESTIMATORS):
        low, high = _interval(draws[:, k], alpha)
        diff_low, diff_high = _interval(draws[:, k] - draws[:, 0], alpha)
        off_policy = name != "logged"
        rows.append(
            {
                "estimator": name,
                "value": point[k],
                "ci_low": low,
                "ci_high": high,
                "vs_logged": point[k] - point[0] if off_policy else np.nan,
                "vs_logged_low": diff_low if off_policy else np.nan,
                "vs_logged_high": diff_high if off_policy else np.nan,
                "identified": not (off_policy and reasons),
                "note": _note(name, reasons, overlap, config),
            }
        )
    raw = pd.DataFrame(rows, columns=ESTIMATE_COLUMNS)
    numbers = ESTIMATE_COLUMNS[1:7]
    estimates = raw.assign(**{c: raw[c].where(raw["identified"]) for c in numbers})
    return OffPolicyResult(
        estimates=estimates,
        raw=raw,
        overlap=overlap,
        level=config.level,
        n_bootstrap=config.n_bootstrap,
    )


def _decision_arrays(
    logged: pd.DataFrame, candidates: pd.DataFrame, target: pd.DataFrame, config: OffPolicyConfig
) -> dict[str, np.ndarray]:
    """Validate the three frames and reduce them to one value per logged decision.

    Returns arrays aligned with ``logged``: y (reward), w (importance weight), q_logged (model
    prediction of the logged pair), dm (target's model value), pi_logged (target's probability
    of the logged rep), raw_propensity (before clipping), estimated (bool), cluster, and
    unsupported (target mass on pairs under the low-propensity threshold; NaN when unknown) and
    outside_rules (whether the logged pair was not eligible by the reconstructed rules; NaN when
    candidates have no ``eligible`` column).
    """
    _require(logged, ["lead_id", "rep_id", "reward"], "logged")
    _require(candidates, ["lead_id", "rep_id", "q"], "candidates")
    _require(target, ["lead_id", "rep_id", "prob"], "target")
    if len(logged) == 0:
        raise ValueError("logged has no decisions: there is nothing to evaluate")
    duplicated = logged["lead_id"].duplicated()
    if duplicated.any():
        raise ValueError(
            f"logged has {int(duplicated.sum())} duplicated lead_id(s), e.g. "
            f"{list(logged.loc[duplicated, 'lead_id'][:5])}: keep one decision per lead"
        )
    for name, frame in (("candidates", candidates), ("target", target)):
        dup = _pair_keys(frame).duplicated()
        if dup.any():
            raise ValueError(f"{name} has {int(dup.sum())} duplicated (lead_id, rep_id) pair(s)")
    y = _finite(logged, "reward", "logged")
    leads = pd.Index(logged["lead_id"].astype("str"))
    candidates = candidates.loc[candidates["lead_id"].astype("str").isin(leads)]
    target = target.loc[target["lead_id"].astype("str").isin(leads)]
    q = _finite(candidates, "q", "candidates")
    prob = _finite(target, "prob", "target")
    if (prob < 0).any() or (prob > 1 + _SUM_TOLERANCE).any():
        raise ValueError("target prob must be in [0, 1] on every row")
    candidate_keys = _pair_keys(candidates)
    logged_pos = candidate_keys.get_indexer(_pair_keys(logged))
    if (logged_pos < 0).any():
        raise ValueError(
            f"{int((logged_pos < 0).sum())} logged choice(s) are not among their lead's "
            f"candidates, e.g. {_examples(logged.loc[logged_pos < 0])}: every logged (lead_id, "
            "rep_id) must be a candidate"
        )
    target_pos = candidate_keys.get_indexer(_pair_keys(target))
    if (target_pos < 0).any():
        raise ValueError(
            f"{int((target_pos < 0).sum())} target pair(s) are not candidates, e.g. "
            f"{_examples(target.loc[target_pos < 0])}: the target may only choose candidate reps"
        )
    target_lead = leads.get_indexer(target["lead_id"].astype("str"))
    total = np.bincount(target_lead, weights=prob, minlength=len(leads))
    if (np.abs(total - 1) > _SUM_TOLERANCE).any():
        bad = leads[np.abs(total - 1) > _SUM_TOLERANCE]
        raise ValueError(
            f"target prob must sum to 1 over each logged lead; {len(bad)} lead(s) do not "
            f"(a lead without target rows sums to 0), e.g. {list(bad[:5])}"
        )
    dm = np.bincount(target_lead, weights=prob * q[target_pos], minlength=len(leads))
    pi_logged = np.zeros(len(leads))
    hits = _pair_keys(target).get_indexer(_pair_keys(logged))
    pi_logged[hits >= 0] = prob[hits[hits >= 0]]

    logged_p = _optional(logged, "propensity")
    candidate_p = _optional(candidates, "propensity")
    for name, values in (("logged", logged_p), ("candidates", candidate_p)):
        present = values[~np.isnan(values)]
        if ((present <= 0) | (present > 1)).any() and name == "logged":
            raise ValueError(
                "logged propensity must be in (0, 1] (the probability the routing chose the "
                "logged rep); leave it empty where unknown"
            )
        if ((present < 0) | (present > 1)).any():
            raise ValueError("candidates propensity must be in [0, 1] on every row")
    estimated = np.isnan(logged_p)
    raw_p = np.where(estimated, candidate_p[logged_pos], logged_p)
    if np.isnan(raw_p).any():
        raise ValueError(
            f"{int(np.isnan(raw_p).sum())} decision(s) have no propensity: neither logged nor in "
            "candidates; estimate them with estimate_propensities"
        )
    used_p = np.where(estimated, np.maximum(raw_p, config.propensity_floor), raw_p)
    unsupported = np.nan
    if not np.isnan(candidate_p).all():
        rare = prob * (candidate_p[target_pos] < config.low_propensity)
        unsupported = float(np.nansum(rare) / len(leads))
    cluster = (
        logged["cluster"].astype("str").to_numpy(dtype=object)
        if "cluster" in logged
        else leads.to_numpy(dtype=object)
    )
    return {
        "y": y,
        "w": pi_logged / used_p,
        "q_logged": q[logged_pos],
        "dm": dm,
        "pi_logged": pi_logged,
        "raw_propensity": raw_p,
        "estimated": estimated,
        "cluster": cluster,
        "unsupported": np.array(unsupported),
        "outside_rules": (
            ~candidates["eligible"].to_numpy(dtype=bool)[logged_pos]
            if "eligible" in candidates
            else np.full(len(leads), np.nan)
        ),
    }


def _estimates(sums: np.ndarray) -> np.ndarray:
    """Every estimator from cluster-sum totals (rows: resamples; columns: n, y, dm, w, wy, wr).

    Columns of the result follow :data:`ESTIMATORS`.
    """
    n, y, dm, w, wy, wr = sums.T
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.column_stack([y / n, dm / n, wy / n, wy / w, (dm + wr) / n, dm / n + wr / w])


def _bootstrap(sums: np.ndarray, config: OffPolicyConfig) -> np.ndarray:
    """Estimates on ``n_bootstrap`` resamples of the clusters (rows of ``sums``), with
    replacement; shape (n_bootstrap, len(ESTIMATORS))."""
    rng = np.random.default_rng(config.seed)
    k = len(sums)
    block = max(1, _BOOTSTRAP_CELLS // k)
    out = []
    for start in range(0, config.n_bootstrap, block):
        size = min(block, config.n_bootstrap - start)
        counts = rng.multinomial(k, np.full(k, 1.0 / k), size=size)
        out.append(_estimates(counts @ sums))
    return np.concatenate(out)


def _interval(draws: np.ndarray, alpha: float) -> tuple[float, float]:
    """Percentile interval of the defined draws (a self-normalised estimate is undefined, 0 / 0,
    in a resample without weight); NaN when none is defined."""
    defined = draws[np.isfinite(draws)]
    if len(defined) == 0:
        return np.nan, np.nan
    low, high = np.quantile(defined, [alpha, 1 - alpha])
    return float(low), float(high)


def _overlap(decisions: dict[str, np.ndarray], config: OffPolicyConfig, n_clusters: int) -> Overlap:
    w = decisions["w"]
    n = len(w)
    total = w.sum()
    ess = float(total**2 / (w @ w)) if total > 0 else 0.0
    estimated = decisions["estimated"]
    clipped = estimated & (decisions["raw_propensity"] < config.propensity_floor)
    source = (
        "estimated"
        if estimated.all()
        else ("logged and estimated" if estimated.any() else "logged")
    )
    return Overlap(
        n_decisions=n,
        n_clusters=n_clusters,
        low_propensity=config.low_propensity,
        ess=ess,
        ess_share=ess / n,
        agreement=float(decisions["pi_logged"].mean()),
        low_propensity_share=float((decisions["raw_propensity"] < config.low_propensity).mean()),
        unsupported_share=float(decisions["unsupported"]),
        outside_rules_share=float(np.mean(decisions["outside_rules"])),
        max_weight=float(w.max()),
        max_weight_share=float(w.max() / total) if total > 0 else np.nan,
        propensity_source=source,
        n_estimated=int(estimated.sum()),
        n_clipped=int(clipped.sum()),
    )


def _not_identified(overlap: Overlap, config: OffPolicyConfig) -> list[str]:
    """The reasons (plain sentences) why the off-policy value is not identified; empty if it is."""
    reasons = []
    if overlap.ess < config.min_ess:
        reasons.append(
            f"the importance weights leave an effective sample of {overlap.ess:.1f} leads, fewer "
            f"than the {config.min_ess:g} needed: the history holds too few decisions like the "
            "policy's"
        )
    if overlap.agreement < config.min_agreement:
        reasons.append(
            f"the policy agrees with the history on only {overlap.agreement:.2%} of the leads "
            f"(at least {config.min_agreement:.0%} needed)"
        )
    if overlap.unsupported_share > config.max_unsupported_share:
        reasons.append(
            f"{overlap.unsupported_share:.1%} of the policy's choices go to reps the history "
            f"almost never chose for such leads (propensity under {config.low_propensity:.0%}; "
            f"at most {config.max_unsupported_share:.0%} allowed)"
        )
    return reasons


def _note(name: str, reasons: list[str], overlap: Overlap, config: OffPolicyConfig) -> str:
    if name == "logged":
        return "observed outcomes of the historical decisions"
    if reasons:
        return "Value not identified: " + "; ".join(reasons) + "."
    notes = {"dm": "the model's prediction alone, unchecked by outcomes"}
    note = notes.get(name, "")
    if overlap.n_clipped and name != "dm":
        clip = f"{overlap.n_clipped} estimated propensities clipped at {config.propensity_floor:g}"
        note = f"{note}; {clip}" if note else clip
    return note


# --- small helpers -----------------------------------------------------------------------------

_NAT = np.iinfo(np.int64).min


def _as_ns(times: pd.Series | np.ndarray) -> np.ndarray:
    return np.asarray(times, dtype="datetime64[ns]").view("int64")


def _require(frame: pd.DataFrame, columns: list[str], name: str) -> None:
    missing = [c for c in columns if c not in frame]
    if missing:
        raise ValueError(f"{name} is missing column(s) {missing}")


def _finite(frame: pd.DataFrame, column: str, name: str) -> np.ndarray:
    values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    if not np.isfinite(values).all():
        raise ValueError(
            f"{name} {column} must be a finite number on every row; "
            f"{int((~np.isfinite(values)).sum())} are not"
        )
    return values


def _optional(frame: pd.DataFrame, column: str) -> np.ndarray:
    if column not in frame:
        return np.full(len(frame), np.nan)
    return pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _pair_keys(frame: pd.DataFrame) -> pd.Index:
    """One hashable key per (lead_id, rep_id) row (a unit separator cannot occur in an id)."""
    lead = frame["lead_id"].astype("str").to_numpy(dtype=object)
    rep = frame["rep_id"].astype("str").to_numpy(dtype=object)
    return pd.Index(lead + "\x1f" + rep, dtype=object)


def _examples(frame: pd.DataFrame) -> list[tuple[str, str]]:
    pairs = zip(frame["lead_id"].astype(str), frame["rep_id"].astype(str), strict=True)
    return list(pairs)[:5]


def _is_number(values: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)


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
