"""The flow that `leadmatch schedule` serves: one nightly recommend run, dated on the team's clock.

Served by ``leadmatch schedule`` (Prefect's ``serve``), or deployed to a work pool with
``prefect deploy pipelines/scheduled_run.py:nightly_flow`` and run by a worker.
"""

# No `from __future__ import annotations` here: Prefect sends this flow to the process that runs
# it by value (cloudpickle), which keeps the objects a function uses but not the names that
# string annotations would need, so the parameters could not be validated there.
from pathlib import Path

from prefect import flow, get_run_logger

from pipelines.config import LeadmatchConfig
from pipelines.recommend import recommend_flow
from pipelines.report import RecommendSummary
from pipelines.scheduling import leave_with_parent, run_date_for


def summary_lines(summary: RecommendSummary) -> list[str]:
    """The run's figures in one line of the scheduler's log, then its notes (what the run could
    not do, e.g. no SLA reclaim without contact dates), one line each."""
    figures = (
        f"leadmatch {summary.run_date}: placed {summary.placed}, held {summary.held}, "
        f"reclaimed {summary.reclaimed} (kept with their rep {summary.kept}), expected wins "
        f"{summary.expected_wins:.1f} (round-robin {summary.expected_wins_round_robin:.1f}); "
        f"outputs in {summary.folder}"
    )
    return [figures, *(f"note: {note}" for note in summary.notes)]


@flow(name="nightly")
def nightly_flow(
    data: Path,
    out: Path | None = None,
    config: LeadmatchConfig | None = None,
    lang: str = "en",
    mapping: str | None = None,
) -> RecommendSummary:
    """Recommend the assignments of the day this run was scheduled for.

    The run date is the date of the scheduled start time on the clock of ``config.timezone``
    (the schedule's time zone), not of the host: a run scheduled for 02:00 in Asia/Shanghai is
    for that Shanghai date even on a UTC host, and a run that starts late keeps its date.
    """
    from prefect.runtime import flow_run

    leave_with_parent()
    config = config or LeadmatchConfig()
    run_date = run_date_for(flow_run.scheduled_start_time, config.timezone)
    summary = recommend_flow(data, run_date, out, config, lang, mapping)
    logger = get_run_logger()
    for line in summary_lines(summary):
        logger.info(line)
    return summary
