"""Named blocks of consecutive positions.

The HiGHS model's rows and columns and the Lagrangian dual's multipliers are laid out in named
blocks (as PuLP and OR-Tools name their constraints), so that code reads ``rows["capacity"]``
instead of offsets, and the dual's multipliers map onto the LP's row prices by name.
"""

from __future__ import annotations

import numpy as np


class Blocks:
    """Consecutive named ranges of positions, in the order they were added.

    ``add("capacity", R)`` reserves R positions and returns their slice; ``blocks["capacity"]``
    gives it again, ``"capacity" in blocks`` says whether there is such a block, ``size`` is the
    number of positions and :meth:`split` cuts a vector into its named parts.
    """

    def __init__(self) -> None:
        self._slices: dict[str, slice] = {}
        self.size = 0

    def add(self, name: str, size: int) -> slice:
        if name in self._slices:
            raise ValueError(f"there is already a block named {name!r}")
        block = slice(self.size, self.size + size)
        self._slices[name] = block
        self.size += size
        return block

    def __getitem__(self, name: str) -> slice:
        return self._slices[name]

    def __contains__(self, name: object) -> bool:
        return name in self._slices

    def __iter__(self):
        return iter(self._slices)

    def split(self, vector: np.ndarray) -> dict[str, np.ndarray]:
        """The parts of ``vector`` (of length ``size``) by block name."""
        return {name: vector[block] for name, block in self._slices.items()}
