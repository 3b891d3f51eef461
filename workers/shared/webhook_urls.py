"""Which webhook URLs ganforge will call: http or https, of bounded length, and not, unless
GANFORGE_WEBHOOK_ALLOW_PRIVATE=1, at an address inside the service's own network (loopback, private,
link-local and other non-public ranges), so a webhook cannot be used to reach what only the service can.

The API checks a URL when a request names it; the delivery worker checks it again before every attempt,
as the name may resolve elsewhere by then. What ganforge stored itself (a model's manifest holds its
training spec) is read back with ALREADY_CHECKED: reading a manifest resolves no name.

Resolving a host name blocks its caller for as long as the resolver takes; in the API that happens
only for a request that names a webhook by host name (an IP address needs no lookup).
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from pydantic import ValidationInfo

from workers.shared.settings import get_settings

MAX_URL_LENGTH = 2000
PRIVATE_RULE = (
    "webhooks to loopback, private and link-local addresses are refused unless "
    "GANFORGE_WEBHOOK_ALLOW_PRIVATE=1"
)

ALREADY_CHECKED = {"webhook_urls_checked": True}
"""The validation context of data ganforge wrote itself, whose URLs were checked when requested."""

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def checked_webhook_url(url: str, info: ValidationInfo) -> str:
    """A request's `webhook`, if ganforge may call it; else ValueError saying why (a 422 on the field)."""
    if info.context and info.context.get("webhook_urls_checked"):
        return url
    settings = get_settings()
    if settings.webhook_secret is None:
        raise ValueError("webhooks are off on this server: GANFORGE_WEBHOOK_SECRET is not set")
    problem = url_problem(url) or destination_problem(url, settings.webhook_allow_private)
    if problem:
        raise ValueError(problem)
    return url


def url_problem(url: str) -> str | None:
    """Why `url` is not a URL a webhook may have, from its text alone; None if it may."""
    if len(url) > MAX_URL_LENGTH:
        return f"the URL has {len(url)} characters; at most {MAX_URL_LENGTH}"
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a port that is not a number in range
    except ValueError as error:
        return f"not a URL: {error}"
    if parts.scheme not in ("http", "https"):
        return "must be an http or https URL"
    if not parts.hostname or any(character.isspace() for character in url):
        return "must be an http or https URL with a host and no spaces"
    if parts.username is not None or parts.password is not None:
        return "must not carry a user name or password (the signature authenticates ganforge)"
    return None


def destination_problem(url: str, allow_private: bool) -> str | None:
    """Why ganforge must not call `url`'s host (it does not resolve, or resolves to a non-public
    address without the opt-in); None if it may."""
    parts = urlsplit(url)
    try:
        addresses = resolve(parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
    except OSError:
        return f"the host {parts.hostname!r} does not resolve"
    if allow_private:
        return None
    for address in addresses:
        kind = non_public_kind(address)
        if kind:
            return f"the host resolves to {address}, a {kind} address: {PRIVATE_RULE}"
    return None


def resolve(host: str, port: int) -> list[Address]:
    """Every address `host` names: itself if it is an IP address, else what the resolver answers."""
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [ipaddress.ip_address(info[4][0].split("%")[0]) for info in found]


def non_public_kind(address: Address) -> str | None:
    """Which kind of non-public address this is ("loopback", "private", …), or None if it is public."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    kinds = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
    )
    return next((kind for kind, is_kind in kinds if is_kind), None)
