"""Keeping the local stack's processes running: a process that exits is started again after a wait
that doubles with each exit in quick succession (1 s, 2 s, 4 s … at most MAX_BACKOFF_SECONDS), so a
crashed worker comes back at once and one that cannot start does not spin. A process that ran for
STABLE_SECONDS before it exited is treated as healthy again: its next restart waits the shortest time.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable

MAX_BACKOFF_SECONDS = 30.0
STABLE_SECONDS = 60.0


class Supervised:
    """One named process, restarted by `check` whenever it is found gone."""

    def __init__(self, name: str, start: Callable[[], subprocess.Popen]):
        self.name = name
        self._start = start
        self.process: subprocess.Popen | None = None
        self.restarts = 0
        self._quick_exits = 0
        self._launched = False
        self._started_at = 0.0
        self._restart_at: float | None = 0.0  # when to start it; None while it runs
        self._stopped = False

    def check(self, now: float | None = None) -> None:
        """Notice an exit (and schedule the restart), or start the process when its wait is over."""
        if self._stopped:
            return
        now = time.monotonic() if now is None else now
        if self.process is not None:
            if self.process.poll() is None:
                return
            ran_for, status = now - self._started_at, self.process.returncode
            self.process = None
            self._schedule_restart(f"exited with status {status}", ran_for, now)
        if self._restart_at is not None and now >= self._restart_at:
            self._launch(now)

    def _launch(self, now: float) -> None:
        try:
            process = self._start()
        except (OSError, RuntimeError) as error:  # e.g. redis-server did not come up
            self._schedule_restart(f"did not start ({error})", 0.0, now)
            return
        if self._launched:
            self.restarts += 1
            print(f"ganforge: {self.name} started again (pid {process.pid})", flush=True)
        self.process, self._started_at, self._restart_at, self._launched = process, now, None, True

    def _schedule_restart(self, why: str, ran_for: float, now: float) -> None:
        self._quick_exits = 1 if ran_for >= STABLE_SECONDS else self._quick_exits + 1
        delay = min(MAX_BACKOFF_SECONDS, 2.0 ** (self._quick_exits - 1))
        print(f"ganforge: {self.name} {why}; starting it again in {delay:g} s", flush=True)
        self._restart_at = now + delay

    def stop(self) -> None:
        """Ask the process to end (SIGTERM); no restart follows."""
        self._stopped = True
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()

    def wait(self, timeout: float) -> None:
        """Wait for the process to end after `stop`; kill it past `timeout`."""
        if self.process is None:
            return
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
