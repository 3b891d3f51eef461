"""The local stack's supervision: a process that exits is started again, after a growing wait."""

from __future__ import annotations

import subprocess
import sys

import pytest

from workers.local.supervisor import MAX_BACKOFF_SECONDS, STABLE_SECONDS, Supervised


def sleeper() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])


@pytest.fixture
def supervised() -> Supervised:
    process = Supervised("sleeper", sleeper)
    yield process
    process.stop()
    process.wait(timeout=10)


def test_a_killed_process_is_started_again_after_a_backoff(supervised: Supervised) -> None:
    supervised.check(now=0.0)
    first = supervised.process
    assert first is not None and first.poll() is None

    first.kill()
    first.wait()
    supervised.check(now=1.0)  # noticed; waits 1 s
    assert supervised.process is None
    supervised.check(now=1.5)
    assert supervised.process is None
    supervised.check(now=2.0)
    assert supervised.process is not None and supervised.process.pid != first.pid
    assert supervised.restarts == 1


def test_the_wait_doubles_while_it_keeps_dying_and_resets_once_stable(supervised: Supervised) -> None:
    now, waits = 0.0, []
    supervised.check(now)
    for _ in range(7):
        supervised.process.kill()
        supervised.process.wait()
        supervised.check(now)
        started = now
        while supervised.process is None:
            now += 0.5
            supervised.check(now)
        waits.append(now - started)
    assert waits == [1, 2, 4, 8, 16, MAX_BACKOFF_SECONDS, MAX_BACKOFF_SECONDS]

    now += STABLE_SECONDS  # it ran a while: the next exit waits the shortest time again
    supervised.process.kill()
    supervised.process.wait()
    supervised.check(now)
    supervised.check(now + 1)
    assert supervised.process is not None


def test_a_process_that_cannot_start_is_retried() -> None:
    attempts = []

    def failing() -> subprocess.Popen:
        attempts.append(1)
        raise RuntimeError("redis-server did not start")

    supervised = Supervised("broken", failing)
    supervised.check(now=0.0)
    supervised.check(now=0.5)
    supervised.check(now=1.0)
    assert len(attempts) == 2 and supervised.process is None


def test_a_stopped_process_is_not_started_again(supervised: Supervised) -> None:
    supervised.check(now=0.0)
    supervised.stop()
    supervised.wait(timeout=10)
    supervised.check(now=100.0)
    assert supervised.process.poll() is not None and supervised.restarts == 0
