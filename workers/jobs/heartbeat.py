"""A background thread that calls a function every few seconds while a block of work runs."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterator

HEARTBEAT_SECONDS = 10
HEARTBEAT_TTL_SECONDS = 3 * HEARTBEAT_SECONDS  # missing three beats in a row means the beater died


@contextlib.contextmanager
def repeating(seconds: float, beat: Callable[[], None], name: str) -> Iterator[None]:
    """Call `beat` every `seconds` until the block ends. A failing beat is retried on the next tick:
    a missed heartbeat must not stop the work it vouches for."""
    stop = threading.Event()

    def loop() -> None:
        while not stop.wait(seconds):
            with contextlib.suppress(Exception):
                beat()

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
