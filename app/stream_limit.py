"""A cap on the event streams one principal holds open at once.

Each open stream holds a Redis subscription and a task in the API for as long as its client wants, so
one client looping on `/events` could pin the process. Streams are counted per principal (an API key,
or "local") in this API process, and one past GANFORGE_MAX_EVENT_STREAMS gets 429. A stream's place
is given back when its response ends, whichever way: finished, client gone, or failed.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterable, Callable
from typing import Any

from fastapi import HTTPException
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

RETRY_AFTER_SECONDS = 10


class StreamSlots:
    """Open streams per principal. The API serves them on one event loop, so no lock is needed."""

    def __init__(self) -> None:
        self.open: Counter[str] = Counter()

    def take(self, principal_id: str, limit: int) -> Callable[[], None]:
        """Count one more stream for `principal_id`, or raise 429; returns what gives it back."""
        if limit and self.open[principal_id] >= limit:
            raise HTTPException(
                429,
                f"{self.open[principal_id]} event streams are already open for this key (limit {limit}, "
                "GANFORGE_MAX_EVENT_STREAMS); close one, or poll the job's status instead",
                {"Retry-After": str(RETRY_AFTER_SECONDS)},
            )
        self.open[principal_id] += 1

        def give_back() -> None:
            self.open[principal_id] -= 1
            if not self.open[principal_id]:
                del self.open[principal_id]

        return give_back


class HeldStream(StreamingResponse):
    """A streaming response that calls `release` once it has ended, however it ended."""

    def __init__(self, content: AsyncIterable[str], release: Callable[[], None], **kwargs: Any) -> None:
        super().__init__(content, **kwargs)
        self.release = release

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self.release()
