"""A temporary Prefect API server that dies with the command that started it.

Prefect 3 runs every flow against an API server. When none is configured (no
``PREFECT_API_URL``), Prefect 3.8 starts a temporary one in a subprocess (uvicorn, ~200 MB) and
stops it when the process exits normally; a ``kill -9`` of the command leaves it running for good.
So the CLI starts the temporary server itself, as a child that watches its parent: on Linux the
kernel sends it SIGTERM when the parent dies (``PR_SET_PDEATHSIG``), and everywhere a thread in
it notices within a second that its parent is gone and shuts it down (forcibly after a grace
period). A configured server (``PREFECT_API_URL``, in the environment or a Prefect profile) is
used as it is.

Run as ``python -m pipelines.flow_server PARENT_PID PORT`` by :meth:`TemporaryServer.start`.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable

from pipelines.errors import UserFacingError

GRACE_S = 10.0
"""How long the server may take to shut down cleanly once its parent is gone."""
_PR_SET_PDEATHSIG = 1


class FlowServerError(UserFacingError):
    """The temporary Prefect server did not start."""


class TemporaryServer:
    """A Prefect API server in a child process that does not outlive this process."""

    def __init__(self, process: subprocess.Popen, port: int, log):
        self.process = process
        self.port = port
        self.log = log

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @classmethod
    def start(
        cls, timeout: float, meanwhile: Callable[[], object] = lambda: None, attempts: int = 3
    ) -> TemporaryServer:
        """Start the server, call ``meanwhile`` (e.g. imports) while it boots, and wait at most
        ``timeout`` seconds until it answers."""
        failure = ""
        for attempt in range(attempts):
            server = cls._launch()
            if attempt == 0:
                meanwhile()
            failure = server._wait_ready(timeout)
            if not failure:
                atexit.register(server.stop)
                return server
            server.stop()
        raise FlowServerError(
            f"the temporary Prefect server did not start: {failure}. Set PREFECT_API_URL to a "
            "running Prefect server, or set PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS "
            "higher on a slow machine."
        )

    @classmethod
    def _launch(cls) -> TemporaryServer:
        from prefect.settings import get_current_settings

        port = _free_port()
        # The server's own messages go to a file, read only when it fails to start: a pipe
        # nobody reads would stall a long-running server once its buffer is full.
        log = tempfile.TemporaryFile()  # noqa: SIM115 (lives as long as the server; stop() closes it)
        env = {
            **os.environ,
            # What Prefect gives its own temporary server: no UI, the lighter set of services,
            # and the settings of the active profile (database, home folder).
            "PREFECT_UI_ENABLED": "0",
            "PREFECT__SERVER_EPHEMERAL": "1",
            "PREFECT__SERVER_FINAL": "1",
            **get_current_settings().to_environment_variables(exclude_unset=True),
        }
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.flow_server", str(os.getpid()), str(port)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return cls(process, port, log)

    def _wait_ready(self, timeout: float) -> str:
        """'' once the server answers its health check, else why it did not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                self.log.seek(0)
                output = self.log.read().decode(errors="replace").strip()[-500:]
                return f"it exited with code {self.process.returncode} ({output})"
            try:
                with urllib.request.urlopen(f"{self.api_url}/health", timeout=2) as response:
                    if response.status == 200:
                        return ""
            except (urllib.error.URLError, OSError):
                pass
            time.sleep(0.2)
        return f"no answer within {timeout:.0f} s"

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after the grace period)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=GRACE_S)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _die_with(parent: int) -> None:
    """Make this process end when ``parent`` does, however the parent ends."""
    if sys.platform.startswith("linux"):
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    if os.getppid() != parent:  # the parent died before the kernel was told to watch it
        os._exit(0)
    threading.Thread(target=_watch, args=(parent,), name="parent-watch", daemon=True).start()


def _watch(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(GRACE_S)
    os._exit(1)


def main(argv: list[str]) -> None:
    parent, port = int(argv[0]), int(argv[1])
    _die_with(parent)
    import uvicorn

    uvicorn.run(
        "prefect.server.api.server:create_app",
        factory=True,
        host="127.0.0.1",
        port=port,
        log_level="error",
        lifespan="on",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
