"""The `leadmatch` command line.

Every command turns a user's mistake (bad data, a missing file, a bad option) into a short
message and a non-zero exit code; tracebacks are for bugs only.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from pipelines.errors import UserFacingError

app = typer.Typer(
    name="leadmatch",
    help="Fair, explainable, model-driven assignment of sales leads to sales reps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True, soft_wrap=True)

EXIT_BAD_INPUT = 2

# Prefect reads these when it is first imported: an in-process server needs longer than the
# default 20 s to start on a small machine, and nothing should phone home.
PREFECT_DEFAULTS = {
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


@app.callback()
def _setup() -> None:
    for key, value in PREFECT_DEFAULTS.items():
        os.environ.setdefault(key, value)


class UserError(UserFacingError):
    """A bad command-line option."""


def _friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Print user errors (bad data, bad config, missing files) plainly and exit non-zero."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from pipelines.io import DataError

        try:
            return command(*args, **kwargs)
        except DataError as err:
            err_console.print(f"[bold red]error:[/] {err}")
            if err.problems is not None:
                _print_problems(err.problems)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except (UserFacingError, FileNotFoundError) as err:
            err_console.print(f"[bold red]error:[/] {err}")
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper


def _print_problems(problems: Any, limit: int = 100) -> None:
    n = len(problems)
    table = Table(title=f"{n} problem{'s' if n != 1 else ''} found", title_justify="left")
    for column in problems.columns:
        table.add_column(str(column), overflow="fold")
    for row in problems.head(limit).itertuples(index=False):
        table.add_row(*("" if v is None else str(v) for v in row))
    err_console.print(table)
    if n > limit:
        err_console.print(f"... and {n - limit} more")
    err_console.print("Fix these rows in the files named above and run the command again.")


def _print_mapping(title: str, values: dict[str, object]) -> None:
    table = Table(title=title, title_justify="left", show_header=False)
    table.add_column("what")
    table.add_column("value", justify="right")
    for key, value in values.items():
        if isinstance(value, float):
            value = f"{value:.3f}"
        table.add_row(key, "-" if value is None else str(value))
    console.print(table)


MappingOption = Annotated[
    str | None,
    typer.Option(
        "--mapping",
        help="Adapter for a raw CRM export: a built-in name (maven) or a YAML mapping file.",
    ),
]


@app.command()
@_friendly
def validate(
    path: Annotated[Path, typer.Argument(help="Data folder (canonical tables or a raw export).")],
    mapping: MappingOption = None,
) -> None:
    """Check a data folder against the data contract and summarise it.

    Exits 0 only when the data is usable by leadmatch; otherwise lists every problem with its
    file, line and column.
    """
    from features.describe import describe_crm, usability_problems
    from pipelines.io import load_data_folder

    loaded = load_data_folder(path, mapping)
    _print_mapping(f"{path}", describe_crm(loaded.data))
    if loaded.repairs:
        console.print("[bold]Repaired by the adapter:[/]")
        for line in loaded.repairs:
            console.print(f"  - {line}")
    problems = usability_problems(loaded.data)
    if problems:
        for line in problems:
            err_console.print(f"[bold red]not usable:[/] {line}")
        raise typer.Exit(EXIT_BAD_INPUT)
    console.print("[bold green]OK[/]: the data meets the contract and is usable.")


@app.command()
@_friendly
def simulate(
    out: Annotated[Path, typer.Option(help="Folder to write the canonical tables into.")],
    scenario: Annotated[
        str, typer.Option(help="Scenario: default, small, null, null_small.")
    ] = "default",
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same world.")] = 0,
) -> None:
    """Generate a synthetic CRM world with known ground truth and write it as a data folder."""
    import time

    from features.describe import describe_crm
    from pipelines.io import write_data_folder
    from simulation import SCENARIOS
    from simulation import simulate as run_simulation

    if scenario not in SCENARIOS:
        raise UserError(
            f"unknown scenario {scenario!r}; choose one of {', '.join(sorted(SCENARIOS))}"
        )
    started = time.perf_counter()
    with console.status(f"simulating the {scenario!r} world (seed {seed})..."):
        world = run_simulation(scenario, seed=seed)
        written = write_data_folder(world.data, out)
    elapsed = time.perf_counter() - started
    _print_mapping(f"simulated {scenario!r} world, seed {seed}", describe_crm(world.data))
    size = sum(p.stat().st_size for p in written.values())
    console.print(f"wrote {len(written)} files ({size / 1e6:.1f} MB) to {out} in {elapsed:.1f} s")


ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML config file (default: built-in defaults).")
]


@app.command()
@_friendly
def train(
    data: Annotated[Path, typer.Option(help="Data folder with the CRM history.")],
    config: ConfigOption = None,
    mapping: MappingOption = None,
) -> None:
    """Train the calibrated lead x rep model, compare it with baselines, register it in MLflow."""
    from pipelines.config import load_config
    from pipelines.train import metrics_table, train_flow

    settings = load_config(config)
    with console.status("training: load, features, fit, evaluate, log (about a minute)..."):
        summary = train_flow(data, settings, mapping)
    table = Table(title=f"held-out metrics ({summary.n_test} pairs, trained on {summary.n_train})")
    metrics = metrics_table(summary)
    table.add_column("model")
    for column in metrics.columns:
        table.add_column(column, justify="right")
    for name, row in metrics.iterrows():
        table.add_row(name, *(f"{v:.4f}" for v in row))
    console.print(table)
    console.print(f"rep signal: {summary.rep_signal}")
    console.print(f"registered leadmatch-pair version {summary.version}: {summary.decision}")


@app.command()
@_friendly
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's data and outputs.")] = Path(
        "data/demo"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the simulated world.")] = 0,
) -> None:
    """The whole job on embedded defaults: simulate a small CRM, validate it, train, recommend."""
    data_dir = out / "crm"
    simulate(out=data_dir, scenario="small", seed=seed)
    validate(path=data_dir, mapping=None)
    console.print(f"\nNext: [bold]uv run leadmatch validate {data_dir}[/] to check it again.")
