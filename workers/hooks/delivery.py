"""The `webhooks` queue's job: one attempt at one delivery, signed per Standard Webhooks.

A 2xx delivers it. A timeout, a connection refused or closed, a 5xx, 408 or 429 is retried after
GANFORGE_WEBHOOK_RETRY_BASE_SECONDS, doubling each time with ±25% jitter (so receivers coming back up
are not hit by every sender at once), up to GANFORGE_WEBHOOK_MAX_ATTEMPTS attempts; then it is failed.
Any other answer (a 4xx, or a redirect: redirects are not followed) fails it at once. Every attempt is
recorded on the delivery.

Retries wait in RQ's scheduled-job registry in Redis, not in a sleeping process: the webhooks worker
runs RQ's scheduler, which queues each when it is due, so a restart of the worker loses none.
"""

from __future__ import annotations

import random
import time
from datetime import datetime, timedelta, timezone

import httpx
from rq import get_current_job
from standardwebhooks.webhooks import Webhook

from workers.shared.settings import Settings, get_settings
from workers.shared.storage import utc_now
from workers.shared.webhook_urls import destination_problem, url_problem
from workers.shared.webhooks import (
    DeliveryAttempt,
    StoredDelivery,
    queue_attempt,
    read_delivery,
    write_delivery,
)

RETRIED_STATUS_CODES = frozenset({408, 429})


def deliver(delivery_id: str, attempt: int) -> None:
    """Attempt number `attempt` of this round (a redelivery starts a new round at 1)."""
    redis = get_current_job().connection
    settings = get_settings()
    delivery = read_delivery(redis, delivery_id)
    if delivery is None or delivery.status != "pending":
        return  # expired, or settled already
    at, started = utc_now(), time.monotonic()
    status_code, error, retry = post(delivery, settings)
    delivery.attempts.append(
        DeliveryAttempt(
            number=len(delivery.attempts) + 1,
            at=at,
            seconds=round(time.monotonic() - started, 3),
            status_code=status_code,
            error=error,
        )
    )
    delivery.next_attempt_at = None
    if error is None:
        delivery.status = "delivered"
    elif retry and attempt < settings.webhook_max_attempts:
        delay = backoff_seconds(attempt, settings.webhook_retry_base_seconds)
        delivery.next_attempt_at = utc_now() + timedelta(seconds=delay)
        queue_attempt(redis, delivery, attempt + 1, delay)
    else:
        delivery.status = "failed"
    write_delivery(redis, delivery)


def backoff_seconds(attempt: int, base: float) -> float:
    """The wait after failed attempt number `attempt`: base, 2·base, 4·base, …, each ±25%."""
    return base * 2 ** (attempt - 1) * random.uniform(0.75, 1.25)


def post(delivery: StoredDelivery, settings: Settings) -> tuple[int | None, str | None, bool]:
    """POST the delivery once: (the receiver's status code, why it failed or None, whether to retry).
    The URL is checked again first: its host may resolve elsewhere since the request named it."""
    if settings.webhook_secret is None:
        return None, "GANFORGE_WEBHOOK_SECRET is not set: nothing to sign with", False
    problem = url_problem(delivery.url) or destination_problem(delivery.url, settings.webhook_allow_private)
    if problem:
        return None, f"refused: {problem}", False
    headers = signed_headers(delivery, settings.webhook_secret.get_secret_value())
    try:
        # The answer's body is never read: a receiver cannot hold the worker by trickling one.
        with httpx.stream(
            "POST",
            delivery.url,
            content=delivery.body.encode(),
            headers=headers,
            timeout=settings.webhook_timeout_seconds,
            follow_redirects=False,
        ) as response:
            code = response.status_code
    except httpx.TimeoutException:
        return None, f"no answer within {settings.webhook_timeout_seconds:g} s", True
    except httpx.TransportError as error:  # refused, reset, closed before answering
        return None, f"{type(error).__name__}: {error}", True
    if 200 <= code < 300:
        return code, None, False
    if code >= 500 or code in RETRIED_STATUS_CODES:
        return code, f"HTTP {code}", True
    return code, f"HTTP {code}" + (" (redirects are not followed)" if 300 <= code < 400 else ""), False


def signed_headers(delivery: StoredDelivery, secret: str) -> dict[str, str]:
    """Standard Webhooks' headers: the signature covers `{id}.{timestamp}.{body}`."""
    now = datetime.now(timezone.utc)
    return {
        "content-type": "application/json",
        "user-agent": "ganforge-webhooks",
        "ganforge-event": delivery.event,  # a convenience: the signature covers the body, not this
        "webhook-id": delivery.id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(delivery.id, now, delivery.body),
    }
