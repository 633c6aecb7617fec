"""What stops a phase of the solver: its work limit (a setting) or the safety net (the clock).

Limits are named by their :class:`~matching.config.SolverSettings` field, which is how
:attr:`~matching.optimiser.Solution.limits_reached` reports them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

TIME_LIMIT = "time_limit_seconds"
LP_ITERATIONS = "lp_iterations_per_row"
DUAL_ITERATIONS = "dual_iterations"
LOCAL_SEARCH_ROUNDS = "local_search_rounds"
REPAIR_MIP_NODES = "repair_mip_nodes"
FULL_MIP_NODES = "full_mip_nodes"


@dataclass(frozen=True)
class SafetyNet:
    """The wall-clock safety net of one solve: ``limit`` seconds from ``started``
    (perf_counter seconds). No answer should depend on it; when it stops a phase, the phase
    reports :data:`TIME_LIMIT`."""

    started: float
    limit: float

    def deadline(self, share: float = 1.0) -> float:
        """The perf_counter time at which ``share`` of the limit has passed."""
        return self.started + share * self.limit

    def left(self, reserve: float = 0.0) -> float:
        """Seconds left before the limit, less ``reserve``, and at least a twentieth of one
        (HiGHS needs a positive time limit)."""
        return max(0.05, self.deadline() - time.perf_counter() - reserve)

    def passed(self, share: float = 1.0) -> bool:
        return time.perf_counter() > self.deadline(share)
