"""docs/webhooks.md's receivers accept what ganforge signs and refuse what it did not: the
standardwebhooks one run as a process, the standard-library check called."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import free_port
from workers.hooks.delivery import signed_headers
from workers.shared.storage import utc_now
from workers.shared.webhooks import StoredDelivery

DOC = Path(__file__).resolve().parents[2] / "docs" / "webhooks.md"
SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
BODY = json.dumps({"id": "tj_abc", "status": "completed", "step": 40})


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", DOC.read_text(), flags=re.MULTILINE | re.DOTALL)


def signed(body: str = BODY) -> dict[str, str]:
    delivery = StoredDelivery(
        id="msg_" + "a" * 32,
        job_id="tj_abc",
        event="completed",
        url="https://example.com/",
        status="pending",
        created_at=utc_now(),
        body=body,
    )
    return signed_headers(delivery, SECRET)


@pytest.fixture
def receiver(tmp_path: Path) -> Iterator[str]:
    """The documented standardwebhooks receiver, on a free port; its address."""
    port = free_port()
    script = tmp_path / "receiver.py"
    script.write_text(python_blocks()[0].replace("8080", str(port)))
    env = {**os.environ, "GANFORGE_WEBHOOK_SECRET": SECRET}
    process = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url)
            break
        except httpx.TransportError:
            time.sleep(0.1)
    yield url
    process.terminate()
    process.wait(timeout=10)


def test_the_documented_receiver_takes_only_signed_posts(receiver: str) -> None:
    assert httpx.post(receiver, content=BODY, headers=signed()).status_code == 204
    forged = signed() | {"webhook-signature": signed('{"id": "other"}')["webhook-signature"]}
    assert httpx.post(receiver, content=BODY, headers=forged).status_code == 401
    assert httpx.post(receiver, content=BODY, headers={"content-type": "application/json"}).status_code == 401


def test_the_documented_hmac_check_agrees(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GANFORGE_WEBHOOK_SECRET", SECRET)
    namespace: dict = {}
    exec(python_blocks()[1], namespace)
    verified = namespace["verified"]
    assert verified(signed(), BODY.encode())
    assert not verified(signed(), BODY.encode() + b" ")
    stale = signed() | {"webhook-timestamp": str(int(time.time()) - 600)}
    assert not verified(stale, BODY.encode())
