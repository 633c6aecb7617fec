"""The optimiser's solver (private): see :mod:`matching.optimiser` for the map of its modules."""
