"""Per-client caps on what a client keeps in Redis: its queued jobs and their kept results, together.

Every sampling or evaluation job, and every generate request answered 202, holds a job record (and
later its result, images included) in Redis until its result TTL runs out. Without a cap one client
could fill Redis for everyone. Each client (API key, or "local") has a sorted set of the Redis keys of
the job records it holds, scored by when it claimed them:

    ganforge:holdings:{principal}    job record key -> time of the claim

A claim drops the entries whose record is gone (finished and expired, or deleted), counts the rest,
and refuses (429) at `GANFORGE_MAX_HELD_JOBS`, all in one atomic script. A claim is made before its
job is queued, so an entry younger than CLAIM_GRACE_SECONDS counts even though its record does not
exist yet. A request that waited for its answer and got it releases its claim: its result is then
kept only briefly (workers.generate_lane.REPLY_TTL_SECONDS).
"""

from __future__ import annotations

import time

from fastapi import HTTPException
from redis import Redis
from redis.asyncio import Redis as AsyncRedis

CLAIM_GRACE_SECONDS = 30
HOLDINGS_TTL_SECONDS = 8 * 24 * 3600  # longer than any job is held: an idle client's set goes away
RETRY_AFTER_SECONDS = 30

# KEYS[1]: the client's holdings. ARGV: now, grace cut-off, the job record key, cap (0: none),
# force ("1": count it even past the cap), the set's TTL. Returns how many are held, or -held if full.
CLAIM = """
local settled = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2])
for _, record in ipairs(settled) do
  if redis.call('EXISTS', record) == 0 then redis.call('ZREM', KEYS[1], record) end
end
local held = redis.call('ZCARD', KEYS[1])
local cap = tonumber(ARGV[4])
if cap > 0 and held >= cap and ARGV[5] ~= '1' then return -held end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[3])
redis.call('EXPIRE', KEYS[1], ARGV[6])
return held + 1
"""


def holdings_key(principal_id: str) -> str:
    return f"ganforge:holdings:{principal_id}"


def _arguments(record_key: str, cap: int, force: bool) -> list[str | float | int]:
    now = time.time()
    return [now, now - CLAIM_GRACE_SECONDS, record_key, cap, "1" if force else "0", HOLDINGS_TTL_SECONDS]


def _checked(held: int, cap: int) -> None:
    if held < 0:
        raise HTTPException(
            429,
            f"this client already has {-held} queued jobs or kept results in Redis (limit {cap}, "
            "GANFORGE_MAX_HELD_JOBS); fetch finished ones or let their results expire, then retry",
            {"Retry-After": str(RETRY_AFTER_SECONDS)},
        )


def claim(redis: Redis, principal_id: str, record_key: str, cap: int, force: bool = False) -> None:
    """Count the job whose record is `record_key` against the client's cap; 429 if it is reached."""
    held = redis.eval(CLAIM, 1, holdings_key(principal_id), *_arguments(record_key, cap, force))
    _checked(int(held), cap)


async def claim_async(
    redis: AsyncRedis, principal_id: str, record_key: str, cap: int, force: bool = False
) -> None:
    """`claim` on the asyncio client."""
    held = await redis.eval(CLAIM, 1, holdings_key(principal_id), *_arguments(record_key, cap, force))
    _checked(int(held), cap)
