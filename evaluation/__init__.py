"""Evaluation: does a routing policy beat round-robin, by how much, at what fairness cost, and
how sure are we? A pure library (no Prefect, no MLflow, no file I/O); ``pipelines/backtest.py``
runs it as the `backtest` flow and writes its files.

On the simulator, where the truth is known:

- :mod:`evaluation.replay`: the replay engine (days of new leads placed by every policy, each
  scored by the simulator's true probabilities);
- :mod:`evaluation.policies`: the replayed policies and what each carries from run to run
  (pending leads, open load, its fairness window);
- :mod:`evaluation.violations`: hard and soft limits broken at a run, and the soft ones that
  were out of the run's reach;
- :mod:`evaluation.policy_table`: the policy table (``backtest.csv``), the fairness curve and
  each rep's shares;
- :mod:`evaluation.messages`: the verdicts in words (also for the off-policy estimates).

On real history, where there is none:

- :mod:`evaluation.off_policy`: off-policy estimators (logged decisions, propensity model,
  estimators, overlap verdict, runner, results);
- :mod:`evaluation.off_policy_backtest`: leadmatch's policy against the logged one,
  cross-fitted.

:mod:`evaluation.schemas` holds the pandera models of every frame a backtest writes, and
:mod:`evaluation.config` the ``off_policy`` slice of the configuration.
"""
