"""The evaluation routes' answers that need no worker: validation, 409/404, listing, the plot, "best"."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import make_model
from workers.shared.atomic import atomic_write_text
from workers.shared.contract import MAX_EVAL_SAMPLES


def store_row(storage, model_id: str, step: int, samples: int, fid: float) -> None:
    row = {
        "step": step,
        "samples": samples,
        "real_images": 100,
        "metrics": ["fid", "kid"],
        "fid": fid,
        "kid": fid / 1000,
        "kid_std": 0.001,
        "seconds": 1.5,
        "device": "cpu",
        "source": "request",
        "created_at": "2026-01-01T00:00:00+00:00",
    }
    atomic_write_text(storage.evaluation_file(model_id, step, samples), json.dumps(row))


def test_evaluating_a_model_without_checkpoint_is_409(client, storage) -> None:
    model = make_model(storage, [], with_checkpoint=False)
    answer = client.post(f"/v1/models/{model.id}/evaluations", json={})
    assert answer.status_code == 409 and "no checkpoint" in answer.json()["detail"]


def test_evaluating_a_missing_checkpoint_is_404(client, unconditional_model) -> None:
    answer = client.post(f"/v1/models/{unconditional_model.id}/evaluations", json={"checkpoint": 999})
    assert answer.status_code == 404 and "999" in answer.json()["detail"]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"samples": MAX_EVAL_SAMPLES + 1}, "samples"),
        ({"samples": 5}, "samples"),
        ({"metrics": ["is"]}, "metrics"),
        ({"metrics": []}, "metrics"),
        ({"checkpoint": "worst"}, "checkpoint"),
    ],
)
def test_bad_evaluation_requests_name_the_field(client, unconditional_model, body, field) -> None:
    answer = client.post(f"/v1/models/{unconditional_model.id}/evaluations", json=body)
    assert answer.status_code == 422
    assert field in json.dumps(answer.json()["detail"])


def test_an_evaluation_is_queued_with_a_location(client, unconditional_model) -> None:
    answer = client.post(
        f"/v1/models/{unconditional_model.id}/evaluations", json={"samples": 100, "metrics": ["fid"]}
    )
    assert answer.status_code == 202
    job = client.get(answer.headers["Location"]).json()
    assert job["kind"] == "evaluation" and job["status"] == "queued"


def test_rows_best_checkpoint_and_plot(client, storage, unconditional_model) -> None:
    model_id = unconditional_model.id
    assert client.get(f"/v1/models/{model_id}/evaluations").json() == {"evaluations": [], "best": None}
    store_row(storage, model_id, 1, 10, 42.0)
    listed = client.get(f"/v1/models/{model_id}/evaluations").json()
    assert [row["fid"] for row in listed["evaluations"]] == [42.0] and listed["best"]["step"] == 1
    card = client.get(f"/v1/models/{model_id}").json()
    assert card["best_checkpoint"] == 1 and card["latest_evaluation"]["fid"] == 42.0
    plot = client.get(f"/v1/models/{model_id}/quality.png")
    assert plot.status_code == 200 and plot.content.startswith(b"\x89PNG")


def test_best_checkpoint_needs_an_evaluation(client, unconditional_model) -> None:
    for path, body in [("generate", {"checkpoint": "best"}), ("evaluations", {"checkpoint": "best"})]:
        answer = client.post(f"/v1/models/{unconditional_model.id}/{path}", json=body)
        assert answer.status_code == 409 and "evaluations" in answer.json()["detail"]


def test_readiness_says_whether_evaluations_can_run(client, monkeypatch, tmp_path) -> None:
    assert client.get("/readyz").json()["feature_network"] == "ok"
    wrong = tmp_path / "wrong.pt"
    wrong.write_bytes(b"not the network")
    monkeypatch.setenv("GANFORGE_FEATURE_NETWORK", str(wrong))
    assert "SHA-256" in client.get("/readyz").json()["feature_network"]
