"""Webhook rules that need no service: which URLs may be called, event ids, the retry schedule, the
secret's form."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
from pydantic import ValidationError

from workers.hooks.delivery import backoff_seconds
from workers.shared.contract import TrainingSpec
from workers.shared.settings import Settings
from workers.shared.storage import ModelManifest, Storage, utc_now
from workers.shared.webhook_urls import (
    ALREADY_CHECKED,
    MAX_URL_LENGTH,
    destination_problem,
    non_public_kind,
    url_problem,
)
from workers.shared.webhooks import event_id


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/hook", "must be an http or https URL"),
        ("example.com/hook", "must be an http or https URL"),
        ("https:///hook", "with a host"),
        ("https://exa mple.com/", "no spaces"),
        ("https://user:secret@example.com/", "user name or password"),
        ("https://example.com:99999/", "not a URL"),
        ("https://example.com/" + "a" * MAX_URL_LENGTH, f"at most {MAX_URL_LENGTH}"),
    ],
)
def test_urls_that_are_not_webhooks_are_named(url: str, reason: str) -> None:
    assert reason in (url_problem(url) or "")


def test_an_https_url_with_a_port_and_query_is_a_webhook() -> None:
    assert url_problem("https://hooks.example.com:8443/ganforge?team=7") is None


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1:8080/", "loopback"),
        ("http://localhost/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://10.0.0.5/", "private"),
        ("http://192.168.1.1/", "private"),
        ("http://169.254.169.254/latest/meta-data", "link-local"),
        ("http://[::ffff:127.0.0.1]/", "loopback"),
        ("http://0.0.0.0/", "unspecified"),
    ],
)
def test_non_public_destinations_are_refused_naming_the_rule(url: str, kind: str) -> None:
    problem = destination_problem(url, allow_private=False) or ""
    assert f"a {kind} address" in problem
    assert "GANFORGE_WEBHOOK_ALLOW_PRIVATE=1" in problem
    assert destination_problem(url, allow_private=True) is None


def test_a_public_address_is_a_destination() -> None:
    assert destination_problem("https://93.184.215.14/hook", allow_private=False) is None
    assert non_public_kind(ipaddress.ip_address("2606:4700::1111")) is None


def test_a_host_that_does_not_resolve_is_refused() -> None:
    assert "does not resolve" in (destination_problem("https://nothing.invalid/", allow_private=True) or "")


def test_an_event_has_one_id_whenever_it_is_emitted() -> None:
    first = event_id("tj_abc", "checkpoint", 500)
    assert first == event_id("tj_abc", "checkpoint", 500)
    assert first.startswith("msg_") and len(first) == 36
    assert len({first, event_id("tj_abc", "checkpoint", 1000), event_id("tj_abd", "checkpoint", 500)}) == 3


def test_retries_back_off_exponentially_with_jitter() -> None:
    waits = [backoff_seconds(attempt, 10.0) for attempt in range(1, 6)]
    for attempt, wait in enumerate(waits, start=1):
        assert 0.75 * 10 * 2 ** (attempt - 1) <= wait <= 1.25 * 10 * 2 ** (attempt - 1)
    assert len({backoff_seconds(3, 10.0) for _ in range(20)}) > 1  # jittered


def test_the_secret_must_be_a_standard_webhooks_secret() -> None:
    assert Settings(webhook_secret="").webhook_secret is None
    assert Settings(webhook_secret="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").webhook_secret is not None
    with pytest.raises(ValidationError, match="whsec_"):
        Settings(webhook_secret="hunter2")
    with pytest.raises(ValidationError, match="whsec_"):
        Settings(webhook_secret="whsec_c2hvcnQ=")  # 5 bytes


def test_a_stored_spec_is_read_back_without_checking_its_url_again(tmp_path: Path) -> None:
    """A manifest stays readable whatever its webhook's host resolves to now, and reading one resolves
    nothing (the API lists every model's)."""
    fields = {"dataset_id": "digits", "webhook": "https://nothing.invalid/hook"}
    with pytest.raises(ValidationError, match="webhook"):
        TrainingSpec.model_validate(fields)
    spec = TrainingSpec.model_validate(fields, context=ALREADY_CHECKED)
    storage = Storage(tmp_path)
    manifest = ModelManifest(
        id="m_000000000001",
        name="",
        training_job_id="tj_000000000001",
        created_at=utc_now(),
        spec=spec,
        dataset_id="digits",
        image_size=32,
        channels=1,
    )
    storage.write_model(manifest)
    assert storage.read_model(manifest.id).spec.webhook == "https://nothing.invalid/hook"
