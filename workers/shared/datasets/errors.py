"""The one error an upload can fail with as a whole, and the short form of a library's error message
that reasons quote."""

from __future__ import annotations


class DatasetError(ValueError):
    """The upload as a whole is unusable. `field` names the request field to blame ("file", "labels", ...)."""

    def __init__(self, field: str, reason: str, status: int = 400):
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.status = status


def short(exc: BaseException, width: int = 80) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= width else text[: width - 1] + "…"
