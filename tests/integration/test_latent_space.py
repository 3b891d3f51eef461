"""The latent toolkit and face-aging style transform, end to end on a conditional digits model with an
encoder, through real workers."""

from __future__ import annotations

import base64
import io

import httpx
import numpy as np
import pytest
from PIL import Image

pytestmark = pytest.mark.integration


def pixels(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)), dtype=np.float32) / 127.5 - 1


def png_of(item: str) -> bytes:
    return base64.b64decode(item)


def generate(api: httpx.Client, model: str, seed: int, label: str) -> bytes:
    response = api.post(f"/v1/models/{model}/generate", json={"seed": seed, "label": label})
    assert response.status_code == 200, response.text
    return response.content


def arithmetic(api: httpx.Client, model: str, **body) -> httpx.Response:
    response = api.post(f"/v1/models/{model}/arithmetic", json={"label": "4", **body})
    assert response.status_code == 200, response.text
    return response


def test_model_card_says_transform_and_encoder(api: httpx.Client, trained_digits: str) -> None:
    card = api.get(f"/v1/models/{trained_digits}").json()
    assert card["labels"] == [str(i) for i in range(10)] and card["label_counts"]["0"] == 178
    assert card["supports_transform"] is True and card["has_encoder"] is True


def test_arithmetic_identities(api: httpx.Client, trained_digits: str) -> None:
    m = trained_digits
    b_alone = arithmetic(api, m, terms=[{"weight": 1, "latent": {"seed": 2}}]).content
    a_minus_a_plus_b = [
        {"weight": 1, "latent": {"seed": 1}},
        {"weight": -1, "latent": {"seed": 1}},
        {"weight": 1, "latent": {"seed": 2}},
    ]
    assert arithmetic(api, m, terms=a_minus_a_plus_b).content == b_alone
    assert b_alone == generate(api, m, 2, "4")  # one seed's latent is the seed's image

    one = arithmetic(api, m, terms=[{"weight": 1, "latent": {"seeds": [1, 2, 3]}}], format="json").json()
    two = arithmetic(api, m, terms=[{"weight": 2, "latent": {"seeds": [1, 2, 3]}}], format="json").json()
    assert np.allclose(2 * np.array(one["latent"]), np.array(two["latent"]))  # weights scale linearly


def test_named_latents_and_expressions(api: httpx.Client, trained_digits: str) -> None:
    m = trained_digits
    for name, latent in [("aa", {"seeds": [1, 5, 9]}), ("bb", {"seed": 2}), ("cc", {"vector": [0.5] * 16})]:
        saved = api.post(f"/v1/models/{m}/latents", json={"name": name, "latent": latent})
        assert saved.status_code in (201, 409), saved.text
    assert {"aa", "bb", "cc"} <= {
        item["name"] for item in api.get(f"/v1/models/{m}/latents").json()["latents"]
    }
    assert api.get(f"/v1/models/{m}/latents/bb").json()["latent"] == {"seed": 2}

    named = arithmetic(api, m, expression="bb").content
    assert named == generate(api, m, 2, "4")  # a saved latent regenerates the same image
    expression = arithmetic(api, m, expression="aa - bb + 0.5*cc").content
    structured = arithmetic(
        api,
        m,
        terms=[
            {"weight": 1, "latent": {"name": "aa"}},
            {"weight": -1, "latent": {"name": "bb"}},
            {"weight": 0.5, "latent": {"name": "cc"}},
        ],
    ).content
    assert expression == structured

    grid = Image.open(io.BytesIO(arithmetic(api, m, expression="aa", variations=8).content))
    assert grid.size == (3 * 34 + 2, 3 * 34 + 2)  # the result amid its eight variations


def test_interpolation_ends_on_its_keys(api: httpx.Client, trained_digits: str) -> None:
    m = trained_digits
    for method in ("slerp", "lerp"):
        body = {"latents": [{"seed": 3}, {"vector": [0.1] * 16}], "steps": 3, "method": method, "label": "7"}
        frames = api.post(f"/v1/models/{m}/interpolate", json={**body, "format": "json"}).json()["frames"]
        assert len(frames) == 5
        assert frames[-1]["latent"] == [float(np.float32(0.1))] * 16  # the key itself, in float32
        assert png_of(frames[0]["png_base64"]) == generate(api, m, 3, "7")
    gif = api.post(f"/v1/models/{m}/interpolate", json={**body, "format": "gif"})
    animation = Image.open(io.BytesIO(gif.content))
    assert (
        gif.headers["content-type"] == "image/gif" and animation.n_frames == 5 and animation.info["loop"] == 0
    )
    walk = api.post(
        f"/v1/models/{m}/interpolate",
        json={"latents": [{"seed": 3}, {"seed": 3}], "labels": ["1", "7"], "steps": 2},
    )
    assert Image.open(io.BytesIO(walk.content)).size == (4 * 34 + 2, 34 + 2)  # a class-to-class strip


def test_inversion_of_a_generated_image(api: httpx.Client, trained_digits: str) -> None:
    m = trained_digits
    target = generate(api, m, 5, "3")
    inverted = api.post(
        f"/v1/models/{m}/invert",
        files={"image": ("x.png", target)},
        data={"label": "3", "steps": "100", "save_as": "found"},
    )
    assert inverted.status_code == 200, inverted.text
    body = inverted.json()
    assert body["encoder"] is True and len(body["latent"]) == 16
    reconstruction_error = float(
        np.mean((pixels(png_of(body["reconstruction_png_base64"])) - pixels(target)) ** 2)
    )
    assert body["mse"] == pytest.approx(reconstruction_error, abs=1e-3)
    random_errors = [
        float(np.mean((pixels(generate(api, m, seed, "3")) - pixels(target)) ** 2))
        for seed in (101, 202, 303)
    ]
    assert body["mse"] < min(random_errors) / 3  # closer than a random latent by a wide margin
    assert api.get(f"/v1/models/{m}/latents/found").json()["source"] == "inverted image"


def test_transform_renders_each_target_from_one_latent(api: httpx.Client, trained_digits: str) -> None:
    m = trained_digits
    photo = generate(api, m, 11, "2")
    form = {"source_label": "2", "target_labels": "0,5,9", "optimise_steps": "50"}
    as_json = api.post(
        f"/v1/models/{m}/transform", files={"image": ("x.png", photo)}, data={**form, "format": "json"}
    )
    assert as_json.status_code == 200, as_json.text
    body = as_json.json()
    assert [item["label"] for item in body["images"]] == ["0", "5", "9"]
    # The latent regenerates the same images.
    for item in body["images"]:
        again = arithmetic(
            api, m, terms=[{"weight": 1, "latent": {"vector": body["latent"]}}], label=item["label"]
        ).content
        assert again == png_of(item["png_base64"])

    strip = api.post(f"/v1/models/{m}/transform", files={"image": ("x.png", photo)}, data=form)
    # input, rebuilt, 3 targets; 32 px cells are drawn at 2× so that captions fit
    assert Image.open(io.BytesIO(strip.content)).size == (2 * (5 * 34 + 2), 2 * (34 + 2) + 14)

    itself = api.post(
        f"/v1/models/{m}/transform",
        files={"image": ("x.png", photo)},
        data={**form, "target_labels": "2", "format": "json"},
    ).json()
    assert itself["images"][0]["png_base64"] == itself["reconstruction_png_base64"]

    ageing = api.post(
        f"/v1/models/{m}/transform",
        files={"image": ("x.png", photo)},
        data={**form, "steps_between": "2", "format": "gif"},
    )
    assert Image.open(io.BytesIO(ageing.content)).n_frames == 3 + 2 * 2
