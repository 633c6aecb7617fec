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
from rich.markup import escape
from rich.table import Table
from rich.text import Text

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
            err_console.print(f"[bold red]error:[/] {escape(str(err))}")
            if err.problems is not None and len(err.problems):
                _print_problems(err.problems)
            raise typer.Exit(EXIT_BAD_INPUT) from None
        except (UserFacingError, FileNotFoundError) as err:
            err_console.print(f"[bold red]error:[/] {escape(str(err))}")
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper


def _print_problems(problems: Any, limit: int = 100) -> None:
    n = len(problems)
    table = Table(title=f"{n} problem{'s' if n != 1 else ''} found", title_justify="left")
    for column in problems.columns:
        table.add_column(str(column), overflow="fold")
    for row in problems.head(limit).itertuples(index=False):
        # Cells are data, not markup: a value such as "[red]" is shown as written.
        table.add_row(*(Text("" if v is None else str(v)) for v in row))
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


ConfigOption = Annotated[
    Path | None, typer.Option("--config", help="YAML config file (default: built-in defaults).")
]


@app.command()
@_friendly
def validate(
    path: Annotated[Path, typer.Argument(help="Data folder (canonical tables or a raw export).")],
    mapping: MappingOption = None,
    config: ConfigOption = None,
) -> None:
    """Check a data folder against the data contract and summarise it.

    Exits 0 only when the data is usable by leadmatch; otherwise lists every problem with its
    file, line and column. Timestamps are read on the config's `timezone`.
    """
    from features.describe import describe_crm, usability_problems
    from pipelines.config import load_config
    from pipelines.io import load_data_folder

    settings = load_config(config)
    loaded = load_data_folder(path, mapping, timezone=settings.timezone)
    _print_mapping(f"{path}", describe_crm(loaded.data))
    if loaded.repairs:
        console.print("[bold]Repaired while loading:[/]")
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


LangOption = Annotated[
    str,
    typer.Option(
        "--lang", help="Language of the CSV headers and reasons: en or zh (Simplified Chinese)."
    ),
]


@app.command()
@_friendly
def recommend(
    data: Annotated[Path, typer.Option(help="Data folder with the CRM as of the run date.")],
    date: Annotated[str, typer.Option("--date", help="Run date, YYYY-MM-DD.")],
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: data/recommendations).")
    ] = None,
    config: ConfigOption = None,
    lang: LangOption = "en",
    mapping: MappingOption = None,
) -> None:
    """Recommend the day's lead assignments: CSVs for managers, a one-page report, an MLflow run."""
    from pipelines.config import load_config
    from pipelines.recommend import recommend_flow

    if lang not in ("en", "zh"):
        raise UserError(f"unknown language {lang!r}: use --lang en or --lang zh")
    run_date = _parse_date(date)
    settings = load_config(config)
    with console.status(f"recommending assignments for {run_date}..."):
        summary = recommend_flow(data, run_date, out, settings, lang, mapping)
    _print_mapping(
        f"recommendations for {summary.run_date}",
        {
            "leads placed": summary.placed,
            "held (no eligible rep with capacity)": summary.held,
            "reclaimed after the SLA": summary.reclaimed,
            "left out (older than the maximum age)": summary.too_old,
            "expected wins": summary.expected_wins,
            "expected wins, round-robin": summary.expected_wins_round_robin,
            "price of fairness (expected wins)": summary.price_of_fairness,
            "model version": summary.model_version,
            "rep-specific matching": "on"
            if summary.rep_signal_used
            else "off (no reliable rep signal)",
        },
    )
    console.print(
        f"wrote {summary.folder}/assignments.csv, rep_summary.csv, left_out.csv and report.html"
    )


def _parse_date(text: str) -> str:
    import datetime as dt

    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise UserError(f"--date {text!r} is not a date: use YYYY-MM-DD, e.g. 2025-05-06") from None


@app.command()
@_friendly
def schedule(
    data: Annotated[
        Path,
        typer.Option(help="Data folder the nightly run reads (kept fresh by your CRM export)."),
    ],
    cron: Annotated[
        str, typer.Option(help="Cron schedule, e.g. '0 2 * * *' for 02:00 every day.")
    ] = "0 2 * * *",
    timezone: Annotated[
        str, typer.Option(help="Time zone of the schedule, e.g. Asia/Shanghai.")
    ] = "UTC",
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: data/recommendations).")
    ] = None,
    config: ConfigOption = None,
    lang: LangOption = "en",
) -> None:
    """Serve the recommend flow as a Prefect deployment on a cron schedule (runs until stopped)."""
    from prefect.schedules import Cron

    from pipelines.config import load_config
    from pipelines.recommend import recommend_flow

    settings = load_config(config)
    if not data.is_dir():
        raise UserError(f"{data}: no such folder")
    console.print(f"serving 'recommend/leadmatch-nightly' on '{cron}' ({timezone}); Ctrl+C to stop")
    recommend_flow.serve(
        name="leadmatch-nightly",
        schedules=[Cron(cron, timezone=timezone)],
        parameters={
            "data": str(data.resolve()),
            "out": str((out or settings.paths.recommendations).resolve()),
            "config": settings.model_dump(mode="json"),
            "lang": lang,
        },
    )


@app.command()
@_friendly
def backtest(
    scenario: Annotated[
        str | None,
        typer.Option(help="Simulator scenario to replay (default, small, null, null_small)."),
    ] = None,
    days: Annotated[int, typer.Option(help="Days to replay after the training cut-off.")] = 30,
    seed: Annotated[int, typer.Option(help="Seed of the simulated world.")] = 0,
    data: Annotated[
        Path | None,
        typer.Option(help="Data folder with logged history: off-policy estimates instead."),
    ] = None,
    mapping: MappingOption = None,
    out: Annotated[Path | None, typer.Option(help="Folder for backtest.csv and the chart.")] = None,
    config: ConfigOption = None,
) -> None:
    """Does leadmatch beat round-robin? Replay the simulator against the truth, or estimate it on history."""
    from pipelines.backtest import run_backtest
    from pipelines.config import load_config

    if (scenario is None) == (data is None):
        raise UserError("give either --scenario NAME (simulator) or --data DIR (real history)")
    settings = load_config(config)
    with console.status("backtesting (a few minutes on the default scenario)..."):
        summary = run_backtest(
            scenario=scenario,
            days=days,
            seed=seed,
            data=data,
            mapping=mapping,
            out=out,
            config=settings,
        )
    table = Table(title="backtest", title_justify="left")
    for column in summary.table.columns:
        table.add_column(str(column), justify="right")
    for row in summary.table.itertuples(index=False):
        table.add_row(*(f"{v:.4g}" if isinstance(v, float) else str(v) for v in row))
    console.print(table)
    for line in summary.messages:
        console.print(f"- {line}")
    if summary.out is not None:
        console.print(f"wrote {summary.out}")
    console.print(f"took {summary.seconds:.0f} s")


@app.command()
@_friendly
def demo(
    out: Annotated[Path, typer.Option(help="Folder for the demo's data and outputs.")] = Path(
        "data/demo"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the simulated world.")] = 0,
) -> None:
    """The whole job on embedded defaults: simulate a small CRM, validate it, train, recommend."""
    import datetime as dt

    import pandas as pd

    from features.timestamps import parse_dates
    from pipelines.io import read_table
    from pipelines.tracking import tracking_uri

    data_dir = out / "crm"
    console.rule("1/4 simulate a small CRM world")
    simulate(out=data_dir, scenario="small", seed=seed)
    console.rule("2/4 validate it")
    validate(path=data_dir, mapping=None, config=None)
    console.rule("3/4 train the pair model")
    train(data=data_dir, config=None, mapping=None)
    console.rule("4/4 recommend the next day's assignments")
    created = parse_dates(read_table(data_dir / "leads.csv")["created_at"])
    next_day = (created.max().normalize() + pd.Timedelta(days=1)).date()
    recommend(
        data=data_dir,
        date=dt.date.isoformat(next_day),
        out=out / "recommendations",
        config=None,
        lang="en",
    )
    from pipelines.config import LeadmatchConfig

    uri = tracking_uri(LeadmatchConfig().tracking)
    console.print(
        f"\nOpen [bold]{out / 'recommendations' / next_day.isoformat() / 'report.html'}[/] in a browser.\n"
        f"MLflow UI: [bold]uv run mlflow ui --backend-store-uri {uri}[/] (then http://127.0.0.1:5000)"
    )
