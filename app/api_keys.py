"""API keys as data: the roles, a key's hash, a new key and its `GANFORGE_API_KEYS` entry. Apart from
app.security so that `ganforge keys new` makes keys without importing FastAPI."""

from __future__ import annotations

import hashlib
import secrets
from typing import Literal

Role = Literal["admin", "user"]
ROLES: tuple[Role, ...] = ("admin", "user")


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_key(role: Role) -> tuple[str, str]:
    """A fresh random key and its configuration entry."""
    key = "gf_" + secrets.token_urlsafe(32)
    return key, f"{role}:{hash_key(key)}"
