"""The notebooks' one way of keeping a figure: shown under its cell, saved as PNG on request."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from matplotlib.figure import Figure


def keeper(
    figures: dict[str, Figure], prefix: str, folder: Path | None, notebook: bool
) -> Callable[[Figure, str], None]:
    """``keep(fig, name)``: lay the figure out, remember it in ``figures``, save it as
    ``<folder>/<prefix>_<name>.png`` when a folder is given (LEADMATCH_FIGURES), and show it under
    its cell when run as a notebook (a figure made without pyplot only shows when displayed: the
    notebook's `%matplotlib inline` gives it its PNG form)."""

    def keep(fig: Figure, name: str) -> None:
        fig.tight_layout()
        figures[name] = fig
        if folder is not None:
            folder.mkdir(parents=True, exist_ok=True)
            fig.savefig(folder / f"{prefix}_{name}.png", dpi=100)
        if notebook:
            from IPython.display import display

            display(fig)

    return keep
