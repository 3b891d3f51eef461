"""The one shape every sampling job returns, so the API answers any of them the same way, whether it
waited for the job or the client fetches `/v1/jobs/{id}/result` later. No torch.

    {"media_type": "image/png" | "image/gif", "body": bytes, "headers": {...}}   a picture
    {"media_type": "application/json", "json": {...}, "headers": {...}}           a JSON document
"""

from __future__ import annotations

import base64
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

# Printable ASCII stays as it is in a header value, but for the list separator and the escape itself.
_HEADER_SAFE = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) not in ",%")


def picture(body: bytes, headers: dict[str, str], media_type: str = "image/png") -> dict[str, Any]:
    return {"media_type": media_type, "body": body, "headers": headers}


def document(payload: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    return {"media_type": "application/json", "json": payload, "headers": headers}


def header_list(values: Iterable[str]) -> str:
    """User-given values (labels) as one comma-separated header value: each percent-encoded as UTF-8
    where it is not printable ASCII or holds ',' or '%', so that any label makes a valid header and
    `urllib.parse.unquote` gives it back."""
    return ",".join(quote(value, safe=_HEADER_SAFE) for value in values)


def b64(png: bytes) -> str:
    return base64.b64encode(png).decode()
