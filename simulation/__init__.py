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

import importlib

# Exports are imported on first use, so the scenario names (simulation.scenarios) can be checked
# without loading numpy and pandas.
_EXPORTS = {
    "SCENARIOS": "simulation.scenarios",
    "Scenario": "simulation.scenarios",
    "without_rep_effects": "simulation.scenarios",
    "CrmWorld": "simulation.world",
    "simulate": "simulation.world",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> object:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'simulation' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
