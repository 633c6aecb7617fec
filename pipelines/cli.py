"""The `leadmatch` command line.

Every command turns a user's mistake (bad data, a missing file, a bad option) into one short
message and exit code 2; tracebacks are for bugs only (exit 1). A command checks its arguments,
config, output folder and MLflow store first, with nothing heavy imported and no server started
(:mod:`pipelines.checks`), so a mistake is reported in about a second; only then does it load the
flows and start Prefect (:mod:`pipelines.runtime`).
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from pipelines import checks, runtime
from pipelines.console import (
    console,
    err_console,
    print_backtest_table,
    print_label,
    print_mapping,
    print_problems,
)
from pipelines.demo import demo_next_steps, demo_verdict, write_demo_crm
from pipelines.errors import UserFacingError

app = typer.Typer(
    name="leadmatch",
    help="Fair, explainable, model-driven assignment of sales leads to sales reps.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

EXIT_BAD_INPUT = 2
_options = {"verbose": False}


@app.callback()
def _setup(
    verbose: Annotated[
        bool,
        typer.Option(
            "--verbose",
            "-v",
            help="Show Prefect's and MLflow's own log lines and third-party warnings, and the "
            "traceback of a step that failed.",
        ),
    ] = False,
) -> None:
    _options["verbose"] = verbose
    runtime.configure(verbose)


class UserError(UserFacingError):
    """A bad command-line option."""


def _friendly(command: Callable[..., Any]) -> Callable[..., Any]:
    """Print user errors (bad data, bad config, missing files) plainly and exit 2."""

    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (UserFacingError, FileNotFoundError) as err:
            err_console.print(f"[bold red]error:[/] {escape(str(err))}")
            problems = getattr(err, "problems", None)
            if problems is not None and len(problems):
                print_problems(problems)
            raise typer.Exit(EXIT_BAD_INPUT) from None

    return wrapper


def _settings(config: Path | None):
    """The configuration (a light import: no pandas, no Prefect)."""
    from pipelines.config import load_config

    return load_config(config)


def _use_store(settings) -> None:
    """Check the MLflow store before anything heavy runs, and say which one is used."""
    from pipelines.tracking import check_store, describe_store

    check_store(settings.tracking)
    err_console.print(f"MLflow store: {describe_store(settings.tracking)}", highlight=False)


@contextlib.contextmanager
def _flows(what: str, module: str) -> Iterator[runtime.Progress]:
    """Import the flows of ``module`` and run them with progress lines (see pipelines.runtime)."""
    progress = runtime.Progress(err_console, what)
    with runtime.flow_session(progress, _options["verbose"], preload=(module,)):
        yield progress


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

    Prints the training target and how the history's outcomes fall under it, and what training
    would still need. Exits 0 only when the data is usable by leadmatch; otherwise lists every
    problem with its file, line and column. Timestamps are read on the config's `timezone`.
    """
    settings = _settings(config)
    checks.data_folder(path)
    checks.mapping(mapping)
    from features.daily import sla_reclaim_off_reason
    from features.describe import LEAD_SCORING, check_history, describe_crm
    from features.lead_scoring import is_lead_scoring
    from pipelines.io import load_data_folder

    loaded = load_data_folder(
        path, mapping, timezone=settings.timezone, allow_personal=settings.privacy.allow_columns
    )
    print_mapping(f"{path}", describe_crm(loaded.data))
    if loaded.personal:
        console.print(
            "[bold]Dropped as personal data[/] (never features, never stored; keep one with "
            "privacy.allow_columns in the config):"
        )
        for column in loaded.personal:
            console.print(f"  - {escape(column.sentence())}")
    if loaded.repairs:
        console.print("[bold]Repaired while loading:[/]")
        for line in loaded.repairs:
            console.print(f"  - {escape(line)}")
    # Without reps nothing is reclaimed: no note about it.
    off = None if is_lead_scoring(loaded.data) else sla_reclaim_off_reason(loaded.data)
    if off:
        console.print(f"note: {escape(off)}")
    history = check_history(
        loaded.data,
        window_days=settings.features.conversion_window_days,
        min_outcomes=settings.model.min_outcomes,
        min_outcomes_per_class=settings.model.min_outcomes_per_class,
    )
    print_label(history.label)
    if history.lead_scoring:
        console.print(f"[bold]{escape(LEAD_SCORING[0].upper() + LEAD_SCORING[1:])}[/]")
    if history.problems:
        for line in history.problems:
            err_console.print(f"[bold red]not usable:[/] {escape(line)}")
        raise typer.Exit(EXIT_BAD_INPUT)
    for line in history.training:
        console.print(f"[bold yellow]train would stop:[/] {escape(line)}")
    use = " for lead scoring" if history.lead_scoring else ""
    console.print(f"[bold green]OK[/]: the data meets the contract and is usable{use}.")


@app.command()
@_friendly
def simulate(
    out: Annotated[Path, typer.Option(help="Folder to write the canonical tables into.")],
    scenario: Annotated[
        str, typer.Option(help="Scenario: default, demo, small, null, null_small.")
    ] = "default",
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives the same world.")] = 0,
) -> None:
    """Generate a synthetic CRM world with known ground truth and write it as a data folder."""
    import time

    checks.scenario(scenario)
    checks.output_folder(out)
    from features.describe import describe_crm
    from pipelines.io import write_data_folder
    from simulation import simulate as run_simulation

    started = time.perf_counter()
    with console.status(f"simulating the {scenario!r} world (seed {seed})..."):
        world = run_simulation(scenario, seed=seed)
        written = write_data_folder(world.data, out)
    elapsed = time.perf_counter() - started
    print_mapping(f"simulated {scenario!r} world, seed {seed}", describe_crm(world.data))
    size = sum(p.stat().st_size for p in written.values())
    console.print(f"wrote {len(written)} files ({size / 1e6:.1f} MB) to {out} in {elapsed:.1f} s")


@app.command()
@_friendly
def train(
    data: Annotated[Path, typer.Option(help="Data folder with the CRM history.")],
    config: ConfigOption = None,
    mapping: MappingOption = None,
    promote: Annotated[
        bool,
        typer.Option(
            "--promote",
            help="Make this version the champion whatever the comparison says (needed after a "
            "change of label definition or feature set).",
        ),
    ] = False,
    no_promote: Annotated[
        bool,
        typer.Option("--no-promote", help="Register this version but leave the champion as is."),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Train and evaluate, say what the registry's gate would decide, log nothing.",
        ),
    ] = False,
) -> None:
    """Train the pair model and two baselines, serve the best, register it in MLflow.

    The new version becomes the data set's champion only when it beats the current one on the
    same held-out pairs beyond noise (bootstrap interval above zero), or with --promote.
    """
    if promote and no_promote:
        raise UserError("--promote and --no-promote contradict each other: pass one of them")
    promotion = "promote" if promote else "never" if no_promote else "gate"
    settings = _settings(config)
    checks.data_folder(data)
    checks.mapping(mapping)
    _use_store(settings)
    with _flows("training", "pipelines.train"):
        from pipelines.train import metrics_table, train_flow

        summary = train_flow(data, settings, mapping, promotion, dry_run)
    for line in summary.personal_columns:
        console.print(f"dropped as personal data: {escape(line)}")
    print_label(list(summary.label))
    table = Table(
        title=f"held-out metrics ({summary.n_test} pairs, trained on {summary.n_train})",
        caption="* served. ECE noise: the ECE a perfectly calibrated model would show here.",
    )
    columns = {
        "log_loss": "log loss",
        "roc_auc": "AUC",
        "ece": "ECE",
        "ece_noise": "ECE noise",
        "mean_predicted": "mean p",
        "base_rate": "win rate",
    }
    table.add_column("model", no_wrap=True)
    for header in columns.values():
        table.add_column(header, justify="right", no_wrap=True)
    for name, row in metrics_table(summary).iterrows():
        label = f"{name} *" if name == summary.served else str(name)
        table.add_row(label, *(f"{row[c]:.4f}" for c in columns))
    console.print(table)
    served = summary.metrics[summary.served]
    console.print(f"served: {summary.served_reason}")
    console.print(
        f"calibration of the served model: ECE {served['ece']:.4f} on the held-out slice (a "
        f"perfectly calibrated model would show about {served['ece_noise']:.4f} there)"
    )
    console.print(f"rep signal: {summary.rep_signal}")
    if summary.dry_run:
        console.print(
            f"dry run, nothing logged; for {summary.model_name} the gate would say: "
            f"{summary.decision}"
        )
    else:
        console.print(
            f"registered {summary.model_name} version {summary.version} (experiment "
            f"{summary.experiment}): {summary.decision}"
        )
    return summary


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
    run_date = checks.run_date(date)
    checks.language(lang)
    settings = _settings(config)
    checks.data_folder(data)
    checks.mapping(mapping)
    checks.reps_to_match(data, mapping, run_date)
    out = checks.output_folder(out or settings.paths.recommendations)
    _use_store(settings)
    with _flows(f"recommending assignments for {run_date}", "pipelines.recommend"):
        from pipelines.recommend import recommend_flow

        summary = recommend_flow(data, run_date, out, settings, lang, mapping)
    print_mapping(
        f"recommendations for {summary.run_date}",
        {
            "leads placed": summary.placed,
            "held (no eligible rep with capacity)": summary.held,
            "reclaimed after the SLA": summary.reclaimed,
            "kept with their rep (no other rep can take them today)": summary.kept,
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
    for line in summary.notes:
        console.print(f"note: {line}")
    console.print(
        f"wrote {summary.folder}/assignments.csv, rep_summary.csv, left_out.csv and report.html"
    )
    return summary


@app.command()
@_friendly
def score(
    data: Annotated[Path, typer.Option(help="Data folder with the leads and outcomes (no reps).")],
    date: Annotated[str, typer.Option("--date", help="Run date, YYYY-MM-DD.")],
    out: Annotated[Path, typer.Option(help="Output folder: writes OUT/DATE/lead_scores.csv.")],
    config: ConfigOption = None,
    lang: LangOption = "en",
    mapping: MappingOption = None,
) -> None:
    """Score the open leads of a history without reps: win chance, tier A/B/C, top factors.

    Uses the data set's champion, a lead-only model trained by `leadmatch train`.
    """
    run_date = checks.run_date(date)
    checks.language(lang)
    settings = _settings(config)
    checks.data_folder(data)
    checks.mapping(mapping)
    checks.no_reps(data, mapping, run_date)
    out = checks.output_folder(out)
    _use_store(settings)
    with _flows(f"scoring the open leads of {run_date}", "pipelines.score"):
        from pipelines.score import score_flow

        summary = score_flow(data, run_date, out, settings, lang, mapping)
    print_mapping(
        f"lead scores for {summary.run_date}",
        {
            "open leads scored": summary.scored,
            f"left out (older than {summary.max_age_days} days)": summary.too_old,
            **{f"tier {t}": n for t, n in summary.tiers.items()},
            "mean win chance": summary.mean_p_win,
            "model version": summary.model_version,
        },
    )
    console.print(f"wrote {summary.folder}/lead_scores.csv")


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
        str | None,
        typer.Option(
            help="Time zone of the schedule and of each run's date, e.g. Asia/Shanghai "
            "(default: timezone in the config, else UTC)."
        ),
    ] = None,
    name: Annotated[str, typer.Option(help="Name of the Prefect deployment.")] = (
        "leadmatch-nightly"
    ),
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: data/recommendations).")
    ] = None,
    config: ConfigOption = None,
    lang: LangOption = "en",
    mapping: MappingOption = None,
) -> None:
    """Run the recommend flow on a cron schedule through a Prefect server (runs until stopped).

    Uses the Prefect server at PREFECT_API_URL when set; otherwise starts one whose database
    sits in the leadmatch store next to MLflow's, and stops it on exit. Each run recommends
    the date of its scheduled time in the schedule's time zone.
    """
    import os

    from pipelines.scheduling import (
        check_cron,
        check_server,
        local_server,
        profile_api_url,
        run_parameters,
        scheduled_config,
        serve,
    )

    checks.language(lang)
    settings = _settings(config)
    checks.data_folder(data)
    checks.mapping(mapping)
    out = checks.output_folder(out or settings.paths.recommendations)
    # Said of the store as configured (the runs get its absolute path, which would read as
    # coming from a config file).
    _use_store(settings)
    settings = scheduled_config(settings, timezone=timezone, out=out)
    check_cron(cron)
    parameters = run_parameters(data, settings, lang, mapping)
    api_url = os.environ.get("PREFECT_API_URL") or profile_api_url()
    if api_url:
        check_server(api_url)
        console.print(f"using the Prefect server at {api_url}")
        serve(api_url, name, cron, settings.timezone, parameters)
        return
    home = settings.tracking.root / "prefect"
    console.print(f"starting a Prefect server (database {home / 'prefect.db'})...")
    with local_server(home) as server:
        console.print(f"Prefect server up: UI at {server.ui_url}, log {server.log}")
        serve(server.api_url, name, cron, settings.timezone, parameters)


@app.command()
@_friendly
def backtest(
    scenario: Annotated[
        str | None,
        typer.Option(help="Simulator scenario to replay (default, demo, small, null, null_small)."),
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
    if (scenario is None) == (data is None):
        raise UserError("give either --scenario NAME (simulator) or --data DIR (real history)")
    if scenario is not None:
        checks.scenario(scenario)
    else:
        checks.data_folder(data)
        checks.mapping(mapping)
    if days < 1:
        raise UserError(f"--days must be at least 1, got {days}")
    settings = _settings(config)
    if out is not None:
        checks.output_folder(out)
    _use_store(settings)
    with _flows("backtesting", "pipelines.backtest"):
        from pipelines.backtest import run_backtest

        summary = run_backtest(
            scenario=scenario,
            days=days,
            seed=seed,
            data=data,
            mapping=mapping,
            out=out,
            config=settings,
        )
    print_backtest_table(summary.table)
    for line in summary.messages:
        console.print(f"- {line}", markup=False)
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
    """The whole job on embedded defaults: simulate a CRM, validate it, train, recommend."""
    checks.output_folder(out)
    data_dir = out / "crm"
    console.rule("1/4 simulate a CRM: 16 reps, 8 months of history, reps who differ")
    run_date = write_demo_crm(data_dir, seed)
    console.rule("2/4 validate it")
    validate(path=data_dir, mapping=None, config=None)
    console.rule("3/4 train the models and register the best")
    trained = train(
        data=data_dir, config=None, mapping=None, promote=False, no_promote=False, dry_run=False
    )
    console.rule(f"4/4 recommend who works the new leads on the morning of {run_date}")
    recommended = recommend(
        data=data_dir, date=run_date, out=out / "recommendations", config=None, lang="en"
    )
    console.rule("what this showed")
    for line in demo_verdict(trained, recommended):
        console.print(line)
    console.print("\n[bold]Next[/] (type these in this folder):")
    for command, what in demo_next_steps(data_dir, out, run_date):
        console.print(f"  [bold]{command}[/]\n      {what}")
