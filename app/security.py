"""API keys, roles and per-key request limits.

Keys are configured as `GANFORGE_API_KEYS="admin:<sha256 hex>,user:<sha256 hex>"`: only hashes are
kept, and a presented key is hashed and compared with every configured hash in constant time
(`ganforge new-key --role user` makes a key and its entry). Roles: `admin` may do everything; `user`
may read models and use them (generate, latents, …), but not touch datasets, training or deletion.

With no keys configured the service is open, but only to a client on this machine that addressed this
machine, with no proxy in between: app.locality refuses everything else before it reaches a route.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import hmac
import time
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from redis.exceptions import RedisError

from app.api_keys import ROLES, Role
from app.api_keys import hash_key as hash_key  # re-exported: callers hash keys through app.security
from workers.shared.settings import Settings, get_settings

bearer = HTTPBearer(auto_error=False, description="An API key: `Authorization: Bearer <key>`.")


@dataclass(frozen=True)
class Principal:
    id: str  # "local" when no keys are configured, else the first 12 hex digits of the key's hash
    role: Role


@dataclass(frozen=True)
class KeyEntry:
    role: Role
    sha256: bytes


@functools.cache
def parse_keys(config: str) -> tuple[KeyEntry, ...]:
    entries = []
    for item in filter(None, (part.strip() for part in config.split(","))):
        role, _, digest = item.partition(":")
        if role not in ROLES or len(digest) != 64:
            raise ValueError(
                f"GANFORGE_API_KEYS entry {item[:20]!r}… is not 'admin:<sha256 hex>' or 'user:<sha256 hex>'"
            )
        entries.append(KeyEntry(role, bytes.fromhex(digest)))  # type: ignore[arg-type]
    return tuple(entries)


def match_key(key: str, entries: tuple[KeyEntry, ...]) -> KeyEntry | None:
    """The entry whose hash matches `key`; every entry is compared, each in constant time."""
    presented = hashlib.sha256(key.encode()).digest()
    found = None
    for entry in entries:
        if hmac.compare_digest(presented, entry.sha256):
            found = entry
    return found


async def authenticate(
    request: Request, credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
) -> Principal:
    settings = get_settings()
    entries = parse_keys(settings.api_keys)
    if not entries:  # app.locality has let through only local, unproxied requests
        return Principal("local", "admin")
    if credentials is None:
        raise HTTPException(
            401, "an API key is required: Authorization: Bearer <key>", {"WWW-Authenticate": "Bearer"}
        )
    entry = match_key(credentials.credentials, entries)
    if entry is None:
        raise HTTPException(401, "the API key is not valid", {"WWW-Authenticate": "Bearer"})
    principal = Principal(entry.sha256.hex()[:12], entry.role)
    await _count_request(request, principal, settings)
    return principal


async def _count_request(request: Request, principal: Principal, settings: Settings) -> None:
    """A fixed one-minute window per key in Redis. Without Redis, requests are not counted (fail open),
    so what needs no Redis keeps working while it is down."""
    limit = settings.requests_per_minute
    if not limit:
        return
    window = int(time.time() // 60)
    key = f"ganforge:rate:{principal.id}:{window}"
    try:
        pipeline = _count(request.app.state.redis_async, key)
        count, _ = await asyncio.wait_for(pipeline, settings.redis_timeout_seconds)
    except (RedisError, asyncio.TimeoutError):  # asyncio.TimeoutError is not the builtin one before 3.11
        return
    if count > limit:
        retry_after = 60 - int(time.time()) % 60
        raise HTTPException(
            429, f"more than {limit} requests per minute for this key", {"Retry-After": str(retry_after)}
        )


async def _count(redis, key: str) -> list:
    """INCR the window's counter and let it expire once the window is past."""
    async with redis.pipeline(transaction=False) as pipe:
        return await pipe.incr(key).expire(key, 120).execute()


def require(role: Role):
    async def check(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
        if role == "admin" and principal.role != "admin":
            raise HTTPException(403, "this needs an admin key")
        return principal

    return Depends(check)


AdminOnly = require("admin")
AnyKey = require("user")
PrincipalDep = Annotated[Principal, Depends(authenticate)]
