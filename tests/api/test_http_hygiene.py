"""One error shape, kept small; strict counts; HEAD wherever GET; nosniff; a cap on event streams."""

from __future__ import annotations

import json
from collections.abc import Iterator

import anyio
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from starlette.requests import ClientDisconnect

from app.errors import bounded
from app.stream_limit import HeldStream, StreamSlots
from tests.api.conftest import LOOPBACK, make_model
from workers.shared.settings import get_settings
from workers.shared.storage import ModelManifest, Storage

pytestmark = pytest.mark.timeout(120)  # an event stream that did not end would hang a test


@pytest.fixture
def crashing_app(service_env, redis) -> Iterator[FastAPI]:
    from app.main import create_app

    app = create_app()

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("a bug, with a secret in its message")

    yield app


@pytest.fixture
def queued_model(storage: Storage) -> ModelManifest:
    """A model whose training never started: its event stream would not end by itself."""
    return make_model(storage, [], with_checkpoint=False)


def assert_json_error(response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-content-type-options"] == "nosniff"
    body = response.json()
    assert set(body) == {"detail"} and body["detail"]
    return body


# --- one error shape --------------------------------------------------------------------------------


def test_routing_errors_are_json(client: TestClient) -> None:
    assert assert_json_error(client.get("/v1/nowhere"), 404)["detail"] == "Not Found"
    assert assert_json_error(client.delete("/healthz"), 405)["detail"] == "Method Not Allowed"
    assert client.delete("/healthz").headers["allow"] == "GET"


def test_parse_errors_are_json_naming_the_place_and_the_reason(client: TestClient) -> None:
    broken = client.post(
        "/v1/training-jobs", content=b'{"dataset_id": ', headers={"Content-Type": "application/json"}
    )
    [error] = assert_json_error(broken, 400)["detail"]
    assert error["loc"][0] == "body" and error["msg"] == "JSON decode error" and error["ctx"]["error"]
    no_boundary = client.post(
        "/v1/datasets", content=b"garbage", headers={"Content-Type": "multipart/form-data"}
    )
    assert "boundary" in assert_json_error(no_boundary, 400)["detail"]


def test_too_large_is_json(client: TestClient) -> None:
    huge = client.post(
        "/v1/training-jobs",
        content=b"{" + b" " * (9 * 2**20) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert "larger than the limit" in assert_json_error(huge, 413)["detail"]


def test_an_unhandled_error_is_json_and_says_nothing_more(crashing_app: FastAPI) -> None:
    with TestClient(
        crashing_app, base_url="http://127.0.0.1", client=LOOPBACK, raise_server_exceptions=False
    ) as client:
        response = client.get("/boom")
    assert assert_json_error(response, 500) == {"detail": "internal error"}


def test_a_422_does_not_echo_a_megabyte(client: TestClient) -> None:
    megabyte = "x" * 2**20
    for body in (
        {"dataset_id": "digits", "name": megabyte},  # too long: the field's input
        {"dataset_id": [megabyte]},  # wrong type
        {"dataset_id": "digits", megabyte: 1},  # an unknown field: its name is in `loc`
        {"dataset_id": "digits", "betas": list(range(200_000))},  # a long array
        {"seeds": [1] * 100_000, "steps": "many"},  # the whole body, in a missing-field error
    ):
        response = client.post("/v1/training-jobs", json=body)
        assert_json_error(response, 422)
        assert len(response.content) < 4000, (list(body), len(response.content))
        assert "too large to echo" in response.text or "characters)" in response.text
    short = client.post("/v1/training-jobs", json={"dataset_id": "digits", "steps": "many"})
    assert {"loc": ["body", "steps"], "input": "many"}.items() <= short.json()["detail"][0].items()


def test_bounded_keeps_what_is_short_and_summarises_what_is_not() -> None:
    assert bounded({"a": [1, 2.5, None, "x"]}) == {"a": [1, 2.5, None, "x"]}
    assert bounded("y" * 1000) == "y" * 200 + "… (1000 characters)"
    assert bounded(list(range(1000))) == "(an array of 1000 items, too large to echo)"
    assert bounded({str(n): n for n in range(1000)}) == "(an object of 1000 fields, too large to echo)"
    deep: list = []
    for _ in range(100_000):  # deeper than any recursion limit
        deep = [deep]
    assert bounded(deep) == "(an array of 1 items, too large to echo)"


# --- strict counts ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [True, "2", 2.0])
@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/v1/training-jobs", {"dataset_id": "digits"}, "steps"),
        ("/v1/training-jobs", {"dataset_id": "digits"}, "batch_size"),
        ("/v1/training-jobs", {"dataset_id": "digits"}, "seed"),
        ("/v1/models/{model}/generate", {}, "n"),
        ("/v1/models/{model}/generate", {}, "seed"),
        ("/v1/models/{model}/interpolate", {"latents": [{"seed": 1}, {"seed": 2}]}, "steps"),
        ("/v1/models/{model}/evaluations", {}, "samples"),
    ],
)
def test_counts_are_integers_only(
    client: TestClient, conditional_model: ModelManifest, path: str, body: dict, field: str, value
) -> None:
    response = client.post(path.format(model=conditional_model.id), json={**body, field: value})
    errors = assert_json_error(response, 422)["detail"]
    assert any(error["loc"][-1] == field and error["type"] == "int_type" for error in errors), errors
    assert "valid integer" in response.text


def test_nested_counts_and_booleans_are_strict_too(
    client: TestClient, conditional_model: ModelManifest
) -> None:
    for body in (
        {"latents": [{"seed": 1}, {"seed": "2"}]},
        {"latents": [{"seeds": [1, 2.0]}, {"seed": 2}]},
        {"latents": [{"seed": 1}, {"seed": 2}], "checkpoint": "1"},
    ):
        response = client.post(f"/v1/models/{conditional_model.id}/interpolate", json=body)
        assert response.status_code == 422, body
    for conditional in ("yes", 1, "true"):
        response = client.post("/v1/training-jobs", json={"dataset_id": "digits", "conditional": conditional})
        assert response.status_code == 422 and response.json()["detail"][0]["type"] == "bool_type"


def test_floats_still_take_integers_and_pairs_arrive_as_arrays(client: TestClient) -> None:
    spec = {"dataset_id": "digits", "steps": 1, "lr_g": 1, "betas": [0, 0.5], "label_smoothing": 0}
    response = client.post("/v1/training-jobs", json=spec)
    assert response.status_code == 202, response.text
    assert response.json()["spec"]["betas"] == [0.0, 0.5]


def test_form_and_path_integers_still_parse_from_text(
    client: TestClient, conditional_model: ModelManifest
) -> None:
    assert client.get(f"/v1/models/{conditional_model.id}/checkpoints/1").status_code == 200
    path = f"/v1/models/{conditional_model.id}/invert"
    files = {"image": ("a.png", b"not an image")}
    wrong = client.post(path, files=files, data={"steps": "true", "label": "a"})
    assert [error["loc"] for error in wrong.json()["detail"]] == [["body", "steps"]]
    parsed = client.post(path, files=files, data={"steps": "5", "label": "a"})
    assert parsed.status_code == 422 and "steps" not in json.dumps(parsed.json()["detail"])


# --- HEAD, nosniff ----------------------------------------------------------------------------------


def test_head_works_wherever_get_does(client: TestClient, conditional_model: ModelManifest) -> None:
    for path in (
        "/healthz",
        "/v1/models",
        f"/v1/models/{conditional_model.id}",
        f"/v1/models/{conditional_model.id}/checkpoints/1",
        "/docs",
        "/openapi.json",
    ):
        get, head = client.get(path), client.head(path)
        assert head.status_code == get.status_code == 200, path
        assert head.content == b"" and head.headers["content-type"] == get.headers["content-type"], path
        assert head.headers.get("content-length") == get.headers.get("content-length"), path
    assert client.head("/v1/nowhere").status_code == 404
    assert client.head("/v1/training-jobs/tj_0/cancel").status_code == 405  # POST only


def test_head_of_an_endless_event_stream_returns(client: TestClient, queued_model: ModelManifest) -> None:
    head = client.head(f"/v1/training-jobs/{queued_model.training_job_id}/events")
    assert head.status_code == 200 and head.headers["content-type"].startswith("text/event-stream")
    assert head.content == b""
    assert not client.app.state.event_streams.open  # its place given back


def test_every_answer_says_nosniff(client: TestClient, conditional_model: ModelManifest) -> None:
    answers = [
        client.get("/healthz"),
        client.get(f"/v1/models/{conditional_model.id}/checkpoints/1"),
        client.get("/docs"),
        client.head("/v1/models"),
        client.get("/v1/models", headers={"X-Forwarded-For": "203.0.113.7"}),  # 403 by app.locality
        client.post("/v1/training-jobs", json={}, headers={"Origin": "http://evil.example"}),  # 403
        client.post("/v1/training-jobs", json={}),  # 422
    ]
    for response in answers:
        assert response.headers["x-content-type-options"] == "nosniff", response.request.url


# --- event streams per client -----------------------------------------------------------------------


def test_event_streams_per_key_are_capped(
    client: TestClient, queued_model: ModelManifest, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GANFORGE_MAX_EVENT_STREAMS", "2")
    get_settings.cache_clear()
    slots: StreamSlots = client.app.state.event_streams
    held = [slots.take("local", 2), slots.take("local", 2)]  # two streams open elsewhere
    path = f"/v1/training-jobs/{queued_model.training_job_id}/events"
    refused = client.get(path)
    assert_json_error(refused, 429)
    assert "2 event streams are already open" in refused.json()["detail"]
    assert "GANFORGE_MAX_EVENT_STREAMS" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) > 0
    held.pop()()  # one closes
    assert client.head(path).status_code == 200
    assert slots.open == {"local": 1}


def test_slots_are_per_key_and_zero_means_no_cap() -> None:
    slots = StreamSlots()
    release = slots.take("a", 1)
    slots.take("b", 1)
    with pytest.raises(Exception, match="limit 1"):
        slots.take("a", 1)
    release()
    assert slots.open == {"b": 1}
    for _ in range(100):
        slots.take("b", 0)


def test_a_stream_gives_its_place_back_however_it_ends() -> None:
    slots = StreamSlots()

    async def endless():
        while True:
            yield "data: x\n\n"

    async def gone(message) -> None:
        if message["type"] == "http.response.body":
            raise OSError("the client went away")

    async def receive() -> dict:
        return {"type": "http.disconnect"}

    scope = {"type": "http", "asgi": {"spec_version": "2.4"}}
    stream = HeldStream(endless(), release=slots.take("a", 1))
    with pytest.raises(ClientDisconnect):
        anyio.run(stream, scope, receive, gone)
    assert not slots.open
