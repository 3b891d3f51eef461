"""State-changing requests from another site's pages are refused, whatever their content type.

An HTML form on any web page can POST urlencoded or multipart bodies to ganforge (no CORS preflight
for those), and a local service without keys would act on them. Browsers say where such a request
comes from: `Origin`, or failing that `Referer`. A POST, PUT, PATCH or DELETE whose origin is not the
service's own (the request's scheme and `Host`, port included) nor one of GANFORGE_ALLOWED_ORIGINS gets
403. Requests with neither header (curl, scripts, other programs) are not from a web page and pass.
"""

from __future__ import annotations

import functools
from urllib.parse import urlsplit

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from workers.shared.settings import get_settings

STATE_CHANGING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
DEFAULT_PORTS = {"http": 80, "https": 443}

Origin = tuple[str, str, int]


def origin_of(url: str) -> Origin | None:
    """(scheme, host, port) of a URL or an origin, the port filled in; None when it has none (`null`)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port or DEFAULT_PORTS.get(parts.scheme.lower())
    except ValueError:  # a port that is not a number
        return None
    if not parts.hostname or port is None:
        return None
    return parts.scheme.lower(), parts.hostname, port


@functools.cache
def allowed_origins(config: str) -> frozenset[Origin]:
    origins = (origin_of(item) for item in config.split(",") if item.strip())
    return frozenset(origin for origin in origins if origin is not None)


def cross_origin(scope: Scope) -> str | None:
    """The foreign origin a state-changing request comes from, or None when it may proceed."""
    if scope["method"] not in STATE_CHANGING:
        return None
    headers = Headers(scope=scope)
    claimed = headers.get("origin") or headers.get("referer")
    if claimed is None:
        return None
    origin = origin_of(claimed)
    own = origin_of(f"{scope['scheme']}://{headers.get('host', '')}")
    if origin is not None and (origin == own or origin in allowed_origins(get_settings().allowed_origins)):
        return None
    return claimed


class SameOrigin:
    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        foreign = cross_origin(scope) if scope["type"] == "http" else None
        if foreign is None:
            await self.app(scope, receive, send)
            return
        detail = (
            f"cross-origin request refused: a {scope['method']} from a page at {foreign[:200]!r} (its "
            "Origin or Referer) is not from this service, and web pages of other sites may not change "
            "anything here. Send it without Origin/Referer (not from a browser), from the service's own "
            "origin, or list the front end's origin in GANFORGE_ALLOWED_ORIGINS."
        )
        await JSONResponse({"detail": detail}, status_code=403)(scope, receive, send)
