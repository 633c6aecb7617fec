"""How the CLI runs flows: Prefect and MLflow settings, quiet third-party output, progress lines.

The flows and libraries do not silence or print anything themselves: the CLI decides, for its
own process, what the user sees.

- :func:`configure` (no heavy import; the CLI calls it first): settings Prefect and MLflow read
  when they are imported, unless the user set them; MLflow's log kept to errors (its pickling
  and pip-version warnings say nothing to a user) and Python warning filters for third-party
  warnings of the same kind (numpy's RuntimeWarnings, MLflow's schema hints). ``--verbose``
  keeps every warning and log line.
- :func:`flow_session` (around the flow calls, after the checks): a Prefect API (the configured
  one, or a temporary server that dies with this process, :mod:`pipelines.flow_server`),
  Prefect's console log kept to warnings without the tracebacks of a
  user's mistake (the CLI prints that once, plainly), and one progress line per step. With
  ``--verbose`` Prefect's whole log, tracebacks included, goes to the console instead.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import time
import warnings
from collections.abc import Iterator

from rich.console import Console

from pipelines.errors import UserFacingError

PREFECT_DEFAULTS = {
    # A temporary Prefect server needs more than the default 20 s to start on a small machine.
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    # Nothing phones home: no usage data from Prefect's server or from the Prefect and MLflow
    # clients (which also spares the user Prefect's first-run analytics banner).
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "true",
    # Steps log at INFO: the Prefect UI keeps those lines, and the CLI shows them as progress.
    "PREFECT_LOGGING_LEVEL": "INFO",
}
MLFLOW_DEFAULTS = {
    # MLflow retries an unreachable tracking server 7 times with backoff up to 120 s (274 s
    # measured); a nightly run should fail in seconds, and say why.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
NOISE_WARNINGS = (
    # numpy on an empty or constant slice; the code handles the NaN it gives.
    (RuntimeWarning, r"(invalid value|divide by zero|overflow) encountered"),
    (RuntimeWarning, r"Mean of empty slice|Degrees of freedom <= 0|All-NaN slice"),
    # Prefect 3.8's runner when `schedule` is stopped (SIGTERM): it pauses its deployments and
    # stops fine, but leaves this coroutine un-awaited.
    (RuntimeWarning, r"coroutine 'Runner\.astop' was never awaited"),
    # MLflow's hints about model signatures and pickled Python models.
    (UserWarning, r".*Inferred schema contains integer column"),
    (UserWarning, r".*serialized using CloudPickle"),
)


def configure(verbose: bool) -> None:
    """Settings and warning filters for this process (call it before importing Prefect or
    MLflow; it imports neither)."""
    for key, value in {**PREFECT_DEFAULTS, **MLFLOW_DEFAULTS}.items():
        os.environ.setdefault(key, value)
    if not verbose:
        # MLflow's informational lines and its pickling and pip-version warnings.
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "ERROR")
        for category, message in NOISE_WARNINGS:
            warnings.filterwarnings("ignore", message=message, category=category)


class Progress:
    """One line per step, with the seconds since the command started, whether or not the output
    is a terminal (a cron log gets the same lines); on a terminal a spinner shows the step in
    course too."""

    def __init__(self, console: Console, what: str):
        self.console = console
        self.what = what
        self.started = time.monotonic()
        self._status = None

    def line(self, text: str) -> None:
        self.console.print(
            f"[{time.monotonic() - self.started:6.1f} s] {text}", markup=False, highlight=False
        )
        if self._status is not None:
            self._status.update(f"{self.what}: {text}")

    @contextlib.contextmanager
    def spinner(self) -> Iterator[Progress]:
        if not self.console.is_terminal:
            yield self
            return
        with self.console.status(f"{self.what}...") as status:
            self._status = status
            try:
                yield self
            finally:
                self._status = None


class _StepLines(logging.Handler):
    """The INFO records of Prefect task runs as progress lines: what a step logs, and its end."""

    def __init__(self, progress: Progress):
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        step = getattr(record, "task_name", None)
        if step is None or record.levelno != logging.INFO:
            return
        message = record.getMessage()
        if message.startswith("Finished in state"):
            self.progress.line(f"{step} done")
        else:
            self.progress.line(f"{step}: {message}")


class _WithoutUserErrors(logging.Filter):
    """Drops the records Prefect writes when a step raises a user's mistake (its traceback, and
    the failed states that repeat the message): the CLI prints the message once, plainly."""

    def __init__(self) -> None:
        super().__init__()
        self._messages: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        if isinstance(error, UserFacingError):
            self._messages.add(f"{type(error).__name__}: {error}")
            return False
        text = record.getMessage()
        return not any(message in text for message in self._messages)


_PROCESS = contextlib.ExitStack()
"""What stays in force until the process ends (the temporary server's API URL)."""


def prefect_api(preload: tuple[str, ...] = ()) -> str:
    """The Prefect API flows of this process use: the configured one, or a temporary server
    started once per process that does not outlive it. The modules of ``preload`` are imported
    while the server starts (``prefect.main`` also sets up Prefect's logging, whose console
    handler :func:`flow_session` adjusts)."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    def load() -> None:
        for module in preload:
            importlib.import_module(module)

    configured = PREFECT_API_URL.value()
    if configured:
        load()
        return configured
    from pipelines.flow_server import TemporaryServer

    timeout = float(os.environ.get("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90"))
    server = TemporaryServer.start(timeout, meanwhile=load)
    # For the life of the process: the demo runs several flows on one server.
    _PROCESS.enter_context(temporary_settings(updates={PREFECT_API_URL: server.api_url}))
    return server.api_url


@contextlib.contextmanager
def flow_session(
    progress: Progress, verbose: bool, preload: tuple[str, ...] = ()
) -> Iterator[None]:
    """Run flows under this context (see the module docstring); ``preload``: the modules of
    the flows, imported while a temporary Prefect server starts."""
    progress.line("loading the flows and connecting to Prefect")
    api = prefect_api(("prefect.main", "mlflow", *preload))
    progress.line(f"Prefect API: {api}")
    from prefect.logging.handlers import PrefectConsoleHandler

    if verbose:  # Prefect's and MLflow's own console lines say it all
        with progress.spinner():
            yield
        return
    consoles = [h for h in logging.getLogger().handlers if isinstance(h, PrefectConsoleHandler)]
    hide = _WithoutUserErrors()
    for handler in consoles:
        handler.setLevel(logging.WARNING)
        handler.addFilter(hide)
    task_runs = logging.getLogger("prefect.task_runs")
    steps = _StepLines(progress)
    task_runs.addHandler(steps)
    try:
        with progress.spinner():
            yield
    finally:
        task_runs.removeHandler(steps)
        for handler in consoles:
            handler.removeFilter(hide)
