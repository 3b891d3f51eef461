"""Work budgets (workers.shared.budgets), header values from user labels (workers.shared.results) and
the declared worker memory (workers.shared.settings). No torch."""

from __future__ import annotations

from urllib.parse import unquote

import pytest
from pydantic import ValidationError

from workers.shared.budgets import (
    MAX_IMAGES,
    MAX_OPTIMISATION_PIXEL_STEPS,
    check_frames,
    check_optimisation,
    frames,
)
from workers.shared.contract import ArithmeticRequest, InterpolateRequest, SaveLatentRequest
from workers.shared.results import header_list
from workers.shared.settings import Settings


def test_frames_count_keys_and_the_steps_between_them() -> None:
    assert frames(2, 8) == 10
    assert frames(6, 50) == MAX_IMAGES
    assert frames(1, 30) == 1  # one target: nothing between
    assert check_frames(6, 50, "latents", "steps") == MAX_IMAGES


def test_over_budget_frames_name_both_fields_and_the_cap() -> None:
    with pytest.raises(ValueError) as caught:
        check_frames(16, 64, "target_labels", "steps_between")
    message = str(caught.value)
    assert "target_labels × steps_between" in message and "976 frames" in message
    assert f"at most {MAX_IMAGES}" in message


@pytest.mark.parametrize(("image_size", "most"), [(32, 8000), (64, 2000), (128, 500)])
def test_optimisation_steps_are_capped_by_image_pixels(image_size: int, most: int) -> None:
    check_optimisation(most, image_size)
    with pytest.raises(ValueError, match=f"at most {most} steps at this size"):
        check_optimisation(most + 1, image_size)
    assert most * image_size**2 <= MAX_OPTIMISATION_PIXEL_STEPS


def test_interpolation_product_is_checked_by_the_schema() -> None:
    keys = [{"seed": seed} for seed in range(16)]
    with pytest.raises(ValidationError, match=r"latents × steps is over budget"):
        InterpolateRequest(latents=keys, steps=64)
    assert len(InterpolateRequest(latents=keys[:6], steps=50).latents) == 6


@pytest.mark.parametrize("value", [1e300, -1e39, 1000.5])
def test_latent_values_and_weights_stay_far_inside_float32(value: float) -> None:
    with pytest.raises(ValidationError, match="vector"):
        SaveLatentRequest(name="x", latent={"vector": [value, 0.0]})
    with pytest.raises(ValidationError, match="weight"):
        ArithmeticRequest(terms=[{"weight": value, "latent": {"seed": 1}}])


def test_header_list_encodes_what_a_header_cannot_carry() -> None:
    labels = ["60+", "0-18", "日本", "été", "a,b", "50%", "old man", "x\r\ny"]
    value = header_list(labels)
    value.encode("ascii")  # a valid header value whatever the labels
    assert value.startswith("60+,0-18,%E6%97%A5%E6%9C%AC,")
    assert [unquote(item) for item in value.split(",")] == labels


def test_worker_memory_is_the_setting_else_this_machine() -> None:
    assert Settings(worker_memory_mb=512).worker_memory_bytes() == 512 * 2**20
    machine = Settings(worker_memory_mb=None).worker_memory_bytes()
    assert machine is None or machine > 2**26
