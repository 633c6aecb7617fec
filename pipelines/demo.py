"""The `demo` command's parts: the demo world written as a CRM export, what the run showed, and
the commands to type next (light to import: each part loads what it needs when called)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pipelines.console import console, print_mapping


def write_demo_crm(folder: Path, seed: int) -> str:
    """Write the `demo` world's history plus one more day of new leads that no rep has been
    given yet (the day the team starts with leadmatch) to ``folder``; return the date of the
    morning after that day, YYYY-MM-DD."""
    import dataclasses

    import pandas as pd

    from features.describe import describe_crm
    from pipelines.io import write_data_folder
    from simulation import simulate as run_simulation

    with console.status(f"simulating the 'demo' world (seed {seed})..."):
        world = run_simulation("demo", seed=seed)
        new_day = world.as_of.normalize()
        fresh = world.new_leads(new_day.date())
        data = dataclasses.replace(
            world.data, leads=pd.concat([world.data.leads, fresh], ignore_index=True)
        )
        write_data_folder(data, folder)
    print_mapping(f"simulated 'demo' world, seed {seed}", describe_crm(data))
    console.print(
        f"wrote {folder}: the history until {new_day - pd.Timedelta(days=1):%Y-%m-%d}, then "
        f"{len(fresh)} new leads created on {new_day:%Y-%m-%d} that no rep has been given yet"
    )
    return f"{new_day + pd.Timedelta(days=1):%Y-%m-%d}"


def demo_verdict(trained: Any, recommended: Any) -> list[str]:
    """What the demo's run showed, in words: the rep signal, the model against its baselines,
    the plan against round-robin (``trained``: a TrainSummary, ``recommended``: a
    RecommendSummary)."""
    from models.training import PAIR

    losses = {name: m["log_loss"] for name, m in trained.metrics.items()}
    others = ", ".join(f"{name} {loss:.4f}" for name, loss in losses.items() if name != PAIR)
    beats = all(losses[PAIR] < loss for name, loss in losses.items() if name != PAIR)
    lines = [
        f"The pair model's held-out log loss is {losses[PAIR]:.4f} "
        f"({'lower than' if beats else 'not lower than every one of'} its baselines: {others})."
    ]
    gain = recommended.expected_wins - recommended.expected_wins_round_robin
    if recommended.rep_signal_used:
        lines.append(
            "Who works a lead matters in this history, and the rep-signal test found it "
            f"({trained.rep_signal}), so each lead went to a rep likely to win it, within "
            "capacity and fairness."
        )
    else:
        lines.append(
            "The rep-signal test found no reliable difference between reps "
            f"({trained.rep_signal}), so the plan only balances value and load."
        )
    lines.append(
        f"Expected wins of the plan: {recommended.expected_wins:.1f}, against "
        f"{recommended.expected_wins_round_robin:.1f} with round-robin ({gain:+.1f})."
    )
    return lines


def demo_next_steps(data_dir: Path, out: Path, day: str) -> list[tuple[str, str]]:
    """(command, what it does) pairs that work as typed in the current folder."""
    from pipelines.tracking import UI_TRAINING_VIEW

    cli = _wrapper_command()
    return [
        (
            f"open {out / 'recommendations' / day / 'report.html'}",
            "the one-page report (assignments.csv and rep_summary.csv beside it)",
        ),
        (
            f"{cli} recommend --data {data_dir} --date {day} --lang zh --out {out / 'zh'}",
            "the same plan with Chinese headers and reasons",
        ),
        (
            _mlflow_ui_command(),
            "the training and recommend runs in MLflow: open "
            f"http://127.0.0.1:5000/{UI_TRAINING_VIEW}",
        ),
        (f"{cli} --help", "every command; the README walks through them"),
    ]


def _from_here(path: Path) -> str:
    """``path`` relative to the current folder, as the user would type it."""
    import os

    return os.path.relpath(path)


def _wrapper_command() -> str:
    """How to call leadmatch from the current folder: the checkout's ./leadmatch wrapper (it
    finds uv even when make installed it out of PATH's reach), or the installed command."""
    import os

    from pipelines.tracking import project_folder

    wrapper = project_folder() / "leadmatch"
    if not wrapper.is_file():
        return "leadmatch"
    relative = _from_here(wrapper)
    # A shell runs a program of the current folder only with a path: ./leadmatch.
    return relative if os.sep in relative else f"./{relative}"


def _mlflow_ui_command() -> str:
    """`make mlflow-ui` in the checkout; from an installed package, the environment's mlflow."""
    import sys

    from pipelines.config import LeadmatchConfig
    from pipelines.tracking import project_folder, tracking_uri

    root = project_folder()
    if (root / "Makefile").is_file():
        here = root == Path.cwd().resolve()
        return "make mlflow-ui" if here else f"make -C {_from_here(root)} mlflow-ui"
    mlflow = Path(sys.executable).parent / "mlflow"
    return f"{mlflow} ui --backend-store-uri {tracking_uri(LeadmatchConfig().tracking)}"
