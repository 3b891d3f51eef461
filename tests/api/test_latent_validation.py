"""Bad input to the latent toolkit and transform: each a 4xx naming the field and the reason, and nothing
queued or stored. No worker runs here."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.archives import png


def fields(response) -> list[str]:
    return [item["loc"][-1] for item in response.json()["detail"]]


@pytest.fixture
def model(client: TestClient, conditional_model) -> str:
    return conditional_model.id


def post(client: TestClient, path: str, **body):
    return client.post(path, json=body)


@pytest.mark.parametrize(
    ("latent", "reason"),
    [
        ({"vector": [0.0] * 7}, "7 values"),
        ({"vector": [0.0] * 9}, "latent_dim is 8"),
        ({"seed": -1}, "greater"),
    ],
)
def test_bad_latent_references(client: TestClient, model: str, latent: dict, reason: str) -> None:
    response = post(client, f"/v1/models/{model}/latents", name="x", latent=latent)
    assert response.status_code == 422 and reason in response.text
    assert client.get(f"/v1/models/{model}/latents").json()["latents"] == []


def test_nan_and_infinity_in_vectors_are_422(client: TestClient, model: str) -> None:
    for literal in ("NaN", "Infinity"):
        body = f'{{"name": "x", "latent": {{"vector": [{literal}, 0, 0, 0, 0, 0, 0, 0]}}}}'
        response = client.post(
            f"/v1/models/{model}/latents", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 422, literal


@pytest.mark.parametrize("name", ["Bad", "a-b", "../x", "x" * 65, ""])
def test_latent_names_are_checked(client: TestClient, model: str, name: str) -> None:
    response = post(client, f"/v1/models/{model}/latents", name=name, latent={"seed": 1})
    assert response.status_code == 422 and "name" in fields(response)


def test_named_latent_round_trip_and_conflicts(client: TestClient, model: str) -> None:
    assert (
        post(client, f"/v1/models/{model}/latents", name="one", latent={"seeds": [1, 2]}).status_code == 201
    )
    assert post(client, f"/v1/models/{model}/latents", name="one", latent={"seed": 3}).status_code == 409
    copied = post(client, f"/v1/models/{model}/latents", name="two", latent={"name": "one"})
    assert copied.status_code == 201 and copied.json()["latent"] == {"seeds": [1, 2]}
    assert client.delete(f"/v1/models/{model}/latents/one").status_code == 204
    assert client.get(f"/v1/models/{model}/latents/one").status_code == 404
    assert client.delete(f"/v1/models/{model}/latents/one").status_code == 404


def test_interpolation_inputs(client: TestClient, model: str) -> None:
    path = f"/v1/models/{model}/interpolate"
    one_key = post(client, path, latents=[{"seed": 1}], label="a")
    assert one_key.status_code == 422 and "latents" in fields(one_key)
    for steps in (0, 65):
        response = post(client, path, latents=[{"seed": 1}, {"seed": 2}], steps=steps, label="a")
        assert response.status_code == 422 and "steps" in fields(response)
    unknown = post(client, path, latents=[{"seed": 1}, {"name": "nobody"}], label="a")
    assert unknown.status_code == 404 and "'nobody'" in unknown.json()["detail"]
    no_label = post(client, path, latents=[{"seed": 1}, {"seed": 2}])
    assert no_label.status_code == 422 and fields(no_label) == ["label"] and "['a', 'b']" in no_label.text
    wrong_label = post(client, path, latents=[{"seed": 1}, {"seed": 2}], labels=["a", "zebra"])
    assert wrong_label.status_code == 422 and "'zebra'" in wrong_label.text
    mismatch = post(client, path, latents=[{"seed": 1}, {"seed": 2}], labels=["a"])
    assert mismatch.status_code == 422 and "one label per key" in mismatch.text


@pytest.mark.parametrize(
    ("expression", "position"),
    [("a -", 2), ("a + * b", 4), ("a b", 2), ("0.5 + a", 0), ("a $ b", 2), ("", None)],
)
def test_malformed_expressions_point_at_the_error(
    client: TestClient, model: str, expression: str, position
) -> None:
    response = post(client, f"/v1/models/{model}/arithmetic", expression=expression, label="a")
    assert response.status_code == 422 and "expression" in fields(response)
    if position is not None:
        assert response.json()["detail"][0]["ctx"]["position"] == position


def test_arithmetic_unknown_names_are_404_naming_them(client: TestClient, model: str) -> None:
    response = post(client, f"/v1/models/{model}/arithmetic", expression="smile - frown + smile", label="a")
    assert response.status_code == 404 and "'smile', 'frown'" in response.json()["detail"]


def test_arithmetic_needs_one_form(client: TestClient, model: str) -> None:
    both = post(client, f"/v1/models/{model}/arithmetic", expression="a", terms=[{"latent": {"seed": 1}}])
    neither = post(client, f"/v1/models/{model}/arithmetic", label="a")
    assert both.status_code == neither.status_code == 422 and "exactly one" in both.text


def test_invert_inputs(client: TestClient, model: str) -> None:
    path = f"/v1/models/{model}/invert"
    not_image = client.post(path, files={"image": ("x.png", b"not an image")}, data={"label": "a"})
    assert not_image.status_code == 422 and fields(not_image) == ["image"]
    no_label = client.post(path, files={"image": ("x.png", png(1))})
    assert no_label.status_code == 422 and fields(no_label) == ["label"]
    bad_label = client.post(path, files={"image": ("x.png", png(1))}, data={"label": "zebra"})
    assert bad_label.status_code == 422 and "'zebra'" in bad_label.text
    bad_name = client.post(path, files={"image": ("x.png", png(1))}, data={"label": "a", "save_as": "No!"})
    assert bad_name.status_code == 422 and fields(bad_name) == ["save_as"]


def test_transform_inputs(client: TestClient, model: str, unconditional_model) -> None:
    image = {"image": ("x.png", png(1))}
    unconditional = client.post(
        f"/v1/models/{unconditional_model.id}/transform", files=image, data={"source_label": "a"}
    )
    assert unconditional.status_code == 422 and "conditional" in unconditional.json()["detail"]
    path = f"/v1/models/{model}/transform"
    unknown_source = client.post(path, files=image, data={"source_label": "old"})
    assert unknown_source.status_code == 422 and fields(unknown_source) == ["source_label"]
    assert "['a', 'b']" in unknown_source.text
    unknown_target = client.post(path, files=image, data={"source_label": "a", "target_labels": "a,zz"})
    assert unknown_target.status_code == 422 and fields(unknown_target) == ["target_labels"]
    neither = client.post(path, data={"source_label": "a"})
    assert neither.status_code == 422 and "exactly one" in neither.text
    not_image = client.post(path, files={"image": ("x.png", b"GIF89a broken")}, data={"source_label": "a"})
    assert not_image.status_code == 422 and fields(not_image) == ["image"]
