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
note says why. The rules (thresholds in :class:`evaluation.config.OffPolicyConfig`):

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

The package follows Open Bandit Pipeline's split: the logged decisions and their candidate
reps (:mod:`~evaluation.off_policy.logged`), the propensity model
(:mod:`~evaluation.off_policy.propensity`), the estimators
(:mod:`~evaluation.off_policy.estimators`), the overlap verdict
(:mod:`~evaluation.off_policy.overlap`), the runner (:mod:`~evaluation.off_policy.runner`) and
its typed results (:mod:`~evaluation.off_policy.results`). Pure: no I/O.
"""

from evaluation.off_policy.estimators import ESTIMATOR_NAMES, ESTIMATORS
from evaluation.off_policy.logged import (
    CHOICE_PAIR_COLUMNS,
    choice_features,
    cross_fit_folds,
    historical_candidates,
    logged_decisions,
)
from evaluation.off_policy.overlap import Overlap
from evaluation.off_policy.propensity import ChoiceModel, estimate_propensities
from evaluation.off_policy.results import ESTIMATE_COLUMNS, Estimate, OffPolicyResult
from evaluation.off_policy.runner import evaluate_policy

__all__ = [
    "CHOICE_PAIR_COLUMNS",
    "ESTIMATE_COLUMNS",
    "ESTIMATORS",
    "ESTIMATOR_NAMES",
    "ChoiceModel",
    "Estimate",
    "OffPolicyResult",
    "Overlap",
    "choice_features",
    "cross_fit_folds",
    "estimate_propensities",
    "evaluate_policy",
    "historical_candidates",
    "logged_decisions",
]
