"""A synthetic CRM world with known ground truth, for the demo, tests, backtests and benchmarks.

    from simulation import simulate, SCENARIOS
    world = simulate("small", seed=0)
    world.data                         # canonical tables (features.schemas.CrmData)
    world.true_probability(pairs)      # pairs: lead_id, rep_id, at [, open_load]
    world.knowable_probability(pairs)  # the best achievable from the visible columns
    world.open_load(rep_ids, at)
    world.new_leads(day)               # leads for a day after the history

Pure: no file I/O (pipelines/ writes the tables).
"""

from simulation.scenarios import SCENARIOS, Scenario, without_rep_effects
from simulation.world import CrmWorld, simulate

__all__ = ["SCENARIOS", "CrmWorld", "Scenario", "simulate", "without_rep_effects"]
