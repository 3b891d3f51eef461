"""The one shape every sampling job returns, so the API answers any of them the same way, whether it
waited for the job or the client fetches `/v1/jobs/{id}/result` later. No torch.

    {"media_type": "image/png" | "image/gif", "body": bytes, "headers": {...}}   a picture
    {"media_type": "application/json", "json": {...}, "headers": {...}}           a JSON document
"""

from __future__ import annotations

import base64
from typing import Any


def picture(body: bytes, headers: dict[str, str], media_type: str = "image/png") -> dict[str, Any]:
    return {"media_type": media_type, "body": body, "headers": headers}


def document(payload: dict[str, Any], headers: dict[str, str]) -> dict[str, Any]:
    return {"media_type": "application/json", "json": payload, "headers": headers}


def b64(png: bytes) -> str:
    return base64.b64encode(png).decode()
