"""With no API keys, serve only a client on this machine that addressed this machine.

"Local" is decided on what the request says about its client, not on the socket it came in by: behind
nginx on the same host, `ssh -L`, `kubectl port-forward` or a sidecar, every client arrives from
127.0.0.1. So, with no keys configured, a request is refused with 403 unless
- its client address (`scope["client"]`) is loopback (a Unix socket, with no client address, is local);
- it carries no proxy header (`Forwarded`, `X-Forwarded-*`, `X-Real-IP`): a proxy in front means the
  real client is somewhere else, and the header that says where can be forged;
- its `Host` is a loopback name or address: a web page that rebinds its own DNS name to 127.0.0.1
  (DNS rebinding) sends its own name as `Host`. A request with no `Host` cannot come from a browser.

This sits in front of every route, /docs and /openapi.json included, except the health probes, which
say nothing about the data and must answer an orchestrator. With keys configured it does nothing: the
key decides (app.security).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Collection

from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from app.security import parse_keys
from workers.shared.settings import get_settings

HOW_TO_CONFIGURE = (
    "Configure API keys: make one with `ganforge new-key --role admin` and put its entry in "
    "GANFORGE_API_KEYS (see docs/security.md)."
)


def is_loopback_address(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def host_name(host_header: str) -> str:
    """The name or address in a `Host` header, without its port or an IPv6 address's brackets."""
    host = host_header.strip().lower()
    if host.startswith("["):
        name, bracket, port = host[1:].partition("]")
        well_formed = bracket and (not port or (port[0] == ":" and port[1:].isdigit()))
        return name if well_formed else host
    name, colon, port = host.rpartition(":")
    if colon and name.count(":") == 0 and port.isdigit():
        return name
    return host  # no port, or a bare IPv6 address such as ::1


def is_loopback_host(host_header: str) -> bool:
    name = host_name(host_header)
    return name == "localhost" or is_loopback_address(name)


def proxy_headers(headers: list[tuple[bytes, bytes]]) -> list[str]:
    """Names of the proxy headers a request carries."""
    names = (name.decode("latin-1") for name, _ in headers)
    return sorted(
        {name for name in names if name in ("forwarded", "x-real-ip") or name.startswith("x-forwarded-")}
    )


def refusal(scope: Scope) -> str | None:
    """Why a request with no keys configured is not served, or None when it is."""
    headers = scope["headers"]
    forwarded = proxy_headers(headers)
    if forwarded:  # first: uvicorn may already have replaced the client address with a forwarded one
        return (
            f"no API keys are configured, and this request carries proxy headers ({', '.join(forwarded)}): "
            f"behind a reverse proxy every client would look local, so proxied requests are refused. "
            f"{HOW_TO_CONFIGURE}"
        )
    client = scope.get("client")
    if client and not is_loopback_address(client[0]):
        return (
            f"no API keys are configured, so only clients on this machine (127.0.0.1, ::1) are served; "
            f"this request came from {client[0]}. {HOW_TO_CONFIGURE}"
        )
    host = dict(headers).get(b"host")
    if host is not None and not is_loopback_host(host.decode("latin-1")):
        return (
            f"no API keys are configured, so only requests addressed to this machine (Host localhost, "
            f"127.0.0.1 or [::1]) are served; Host {host.decode('latin-1')[:100]!r} is refused, as a web "
            f"page could reach the service through DNS rebinding. Use http://127.0.0.1:<port>, or: "
            f"{HOW_TO_CONFIGURE}"
        )
    return None


class LocalOnly:
    """Refuses (403, saying why and what to configure) what `refusal` names, while no keys are set."""

    def __init__(self, app: ASGIApp, open_paths: Collection[str] = ()):
        self.app = app
        self.open_paths = frozenset(open_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] not in self.open_paths
            and not parse_keys(get_settings().api_keys)
        ):
            reason = refusal(scope)
            if reason is not None:
                await JSONResponse({"detail": reason}, status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)
