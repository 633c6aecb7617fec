"""What `leadmatch schedule` needs besides Prefect itself: a real Prefect server, and the run date.

Prefect only runs schedules against a real server: its temporary in-process server logs
"Cannot schedule flows on an ephemeral server" and waits for runs that never come. So the
scheduler either uses the server at ``PREFECT_API_URL`` (production: one server for every
schedule) or starts its own, with its database in the leadmatch store next to MLflow's, and stops
it again when it stops. Only :func:`check_cron` imports Prefect, when it is called: the other
checks run before the slow imports.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

from pipelines.config import LeadmatchConfig
from pipelines.console import console
from pipelines.errors import UserFacingError
from pipelines.tracking import store_folder

DEFAULT_PORT = 4200
# A fresh database is migrated on the first start: 20-30 s on an idle 2-core machine, and
# several times that when the machine is busy.
STARTUP_TIMEOUT_SECONDS = 180.0


class SchedulingError(UserFacingError):
    """No Prefect server can run the schedule (unreachable, or it could not be started)."""


def run_date_for(moment: dt.datetime, timezone: str) -> str:
    """The date (YYYY-MM-DD) of the aware ``moment`` on the clock of ``timezone``.

    A run scheduled for 02:00 in Asia/Shanghai starts at 18:00 UTC the day before: its date is
    the Shanghai date, whatever the host's clock says.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{moment!r} has no time zone: give the moment with its offset")
    return moment.astimezone(ZoneInfo(timezone)).date().isoformat()


def scheduled_config(
    config: LeadmatchConfig, *, timezone: str | None = None, out: Path | None = None
) -> LeadmatchConfig:
    """The configuration each scheduled run gets: ``config`` on the clock of ``timezone`` (when
    given) with absolute store and output folders, since the runs execute in other processes
    that may start elsewhere. Raises :class:`SchedulingError` for an unknown time zone."""
    from pydantic import ValidationError

    settings = config.model_dump(mode="json")
    if timezone is not None:
        settings["timezone"] = timezone
    settings["tracking"]["root"] = str(store_folder(config.tracking))
    settings["paths"]["recommendations"] = str((out or config.paths.recommendations).resolve())
    try:
        return LeadmatchConfig.model_validate(settings)
    except ValidationError as err:
        raise SchedulingError(f"--timezone: {err.errors()[0]['ctx']['error']}") from None


def run_parameters(
    data: Path, config: LeadmatchConfig, lang: str, mapping: str | None
) -> dict[str, object]:
    """The parameters of every scheduled run (``config`` from :func:`scheduled_config`).

    Paths are made absolute, since the runs start in other processes, but links are kept: the
    registry names a data set by its folder as the user names it (``pipelines.registry``), so
    a data folder that is a link to its latest export (as leadmatch's own writers publish
    folders) must reach the runs as the link, or they would look for the champion of another
    data set.
    """
    if mapping is not None and Path(mapping).suffix.lower() in (".yaml", ".yml"):
        mapping = os.path.abspath(mapping)
    return {
        "data": os.path.abspath(data),
        "out": str(config.paths.recommendations),
        "config": config.model_dump(mode="json"),
        "lang": lang,
        "mapping": mapping,
    }


def leave_with_parent(interval: float = 2.0) -> None:
    """End this process (exit code 70) once the process that started it is gone.

    A scheduled run is a process of its scheduler (``schedule``) or worker. Killed with SIGKILL,
    the scheduler takes its Prefect server with it, but its last run's process (~480 MB) was
    seen alive 3 minutes later, retrying the dead server after its outputs were published. A
    daemon thread checks every ``interval`` seconds whether this process was handed to another
    parent. A run in progress then stops unpublished; the next run cleans its staging folder.
    """
    import threading

    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(interval)
        os._exit(70)

    threading.Thread(target=watch, name="leave-with-parent", daemon=True).start()


def check_cron(cron: str) -> None:
    """Refuse a cron string Prefect would not schedule (this imports Prefect: a few seconds)."""
    from prefect.schedules import Cron

    try:
        Cron(cron)
    except ValueError:
        raise SchedulingError(
            f"--cron {cron!r} is not a cron schedule: five fields, minute hour day month weekday, "
            "e.g. '0 2 * * *' for 02:00 every day"
        ) from None


def server_is_up(api_url: str, timeout: float = 2.0) -> bool:
    """Whether a Prefect server answers its health check at ``api_url`` (``http://.../api``)."""
    try:
        with urllib.request.urlopen(f"{api_url.rstrip('/')}/health", timeout=timeout) as reply:
            return reply.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


def check_server(api_url: str) -> None:
    """Refuse with a clear message when the configured server does not answer."""
    if not server_is_up(api_url):
        raise SchedulingError(
            f"no Prefect server answers at PREFECT_API_URL={api_url}: start it "
            "(`.venv/bin/prefect server start`) or fix the address; unset PREFECT_API_URL to let "
            "`leadmatch schedule` start its own server"
        )


@dataclass(frozen=True)
class LocalServer:
    """A Prefect server started by the scheduler: its API address and where it keeps things."""

    api_url: str
    database: Path
    log: Path

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")


@contextlib.contextmanager
def local_server(home: Path, *, port: int = DEFAULT_PORT) -> Iterator[LocalServer]:
    """Start a Prefect server whose database is ``home/prefect.db`` and stop it on exit.

    One scheduler per ``home`` at a time (a lock file says so): two servers on one SQLite
    database would both create the same runs. ``port`` is used when free, else any free port.
    Raises :class:`SchedulingError` when the server does not come up.
    """
    home = Path(home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    with _exclusive(home / "server.lock"):
        port = port if _port_is_free(port) else _free_port()
        server = LocalServer(
            api_url=f"http://127.0.0.1:{port}/api",
            database=home / "prefect.db",
            log=home / "server.log",
        )
        env = {
            key: value
            for key, value in os.environ.items()
            if key not in ("PREFECT_API_URL", "PREFECT_API_KEY")
        }
        env.update(
            {
                "PREFECT_HOME": str(home),
                "PREFECT_SERVER_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{server.database}",
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            }
        )
        with server.log.open("ab") as log:
            process = subprocess.Popen(
                server_command(port),
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,
            )
        try:
            _wait_until_up(process, server)
            yield server
        finally:
            _stop(process)


def server_command(port: int) -> list[str]:
    """The command that runs a Prefect server (API, UI and the scheduler) on ``port``."""
    return [
        sys.executable,
        "-m",
        "prefect",
        "server",
        "start",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]


def _wait_until_up(process: subprocess.Popen, server: LocalServer) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SchedulingError(
                f"the Prefect server stopped while starting (exit code {process.returncode}): "
                f"{_last_line(server.log)} (full log: {server.log}). Or start a server yourself "
                "and set PREFECT_API_URL"
            )
        if server_is_up(server.api_url):
            return
        time.sleep(1.0)
    raise SchedulingError(
        f"the Prefect server did not answer within {STARTUP_TIMEOUT_SECONDS:.0f} s at "
        f"{server.api_url} (log: {server.log}). Or start a server yourself and set "
        "PREFECT_API_URL"
    )


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    # The server runs in its own process group (so Ctrl+C reaches it only through us): end
    # the whole group, politely first.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()


def _die_with_parent() -> None:
    """Linux: the server gets SIGTERM when the scheduler dies, even by ``kill -9``."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    import fcntl

    with path.open("a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise SchedulingError(
                f"another `leadmatch schedule` ({owner}) already runs the Prefect server of this "
                f"store ({path.parent}): stop it first, or run one Prefect server for all "
                "schedules and set PREFECT_API_URL"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)
            fcntl.flock(handle, fcntl.LOCK_UN)


def _port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the server will bind it: a port whose last server stopped a moment ago is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _last_line(log: Path) -> str:
    try:
        lines = [line for line in log.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return "no log"
    return lines[-1][:300] if lines else "the log is empty"


def profile_api_url() -> str | None:
    """PREFECT_API_URL from the active Prefect profile (``prefect config set``), if any."""
    from prefect.settings import PREFECT_API_URL

    return PREFECT_API_URL.value() or None


def serve(api_url: str, name: str, cron: str, timezone: str, parameters: dict[str, object]) -> None:
    """Serve the nightly flow until stopped, one run at a time, through the server at
    ``api_url``."""
    from prefect.deployments.runner import EntrypointType
    from prefect.schedules import Cron
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from pipelines.scheduled_run import nightly_flow

    console.print(
        f"serving 'nightly/{name}' on '{cron}' ({timezone}): each run writes "
        f"{parameters['out']}/<date>/; Ctrl+C to stop"
    )
    # Prefect read its settings when first imported; the runs it starts inherit these too.
    with temporary_settings(updates={PREFECT_API_URL: api_url}):
        try:
            # One run at a time: a run due while the previous one still works waits for it
            # rather than computing the same plan side by side.
            nightly_flow.serve(
                name=name,
                schedules=[Cron(cron, timezone=timezone)],
                parameters=parameters,
                entrypoint_type=EntrypointType.MODULE_PATH,
                print_starting_message=False,
                limit=1,
            )
        finally:
            _finish_running_runs()


def _finish_running_runs() -> None:
    """Let a run in progress finish while the server can still record it (Prefect stops
    serving on Ctrl+C or SIGTERM but leaves its runs going); a second signal stops them."""
    import multiprocessing

    running = multiprocessing.active_children()
    if not running:
        return
    console.print(f"waiting for {len(running)} run(s) in progress (Ctrl+C again stops them)...")
    try:
        for process in running:
            process.join()
    except (KeyboardInterrupt, SystemExit):
        for process in running:
            process.kill()
        raise
