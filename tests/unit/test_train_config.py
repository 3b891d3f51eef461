"""A training spec reaches the training loop whole: every field the loop knows is carried over."""

from __future__ import annotations

import json
from dataclasses import fields
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from models.networks import NetworkSpec
from models.training import TrainConfig
from workers.jobs.training import train_config
from workers.shared.contract import TrainingSpec
from workers.shared.recipes import AUGMENT_POLICIES, CONDITIONINGS
from workers.shared.storage import ModelManifest

# Spec fields that are not the loop's: they choose the data, name the model, or set the schedule, the
# evaluations during training and the encoder's training (workers.jobs.training._schedule, TrainingEvaluation,
# train_encoder), or the devices the job spreads the loop over (workers.jobs.multi_device).
NOT_THE_LOOPS = {
    "dataset_id",
    "webhook",
    "webhook_events_filter",
    "name",
    "conditional",
    "image_size",
    "checkpoint_every",
    "sample_every",
    "log_every",
    "keep_checkpoints",
    "encoder_steps",
    "eval_every",
    "eval_samples",
    "devices",
}

# A value other than the default for every field the loop reads.
UNUSUAL = {
    "latent_dim": 12,
    "base_channels": 8,
    "loss": "hinge",
    "label_smoothing": 0.25,
    "spectral_norm": True,
    "batch_size": 16,
    "steps": 77,
    "lr_g": 1e-3,
    "lr_d": 3e-3,
    "betas": (0.1, 0.9),
    "ema_decay": 0.5,
    "seed": 42,
    "precision": "fp32",
    "compile": True,
    "architecture": "resnet",
    "conditioning": "batchnorm",
    "augment": "ada",
    "ada_target": 0.8,
    "ada_speed_images": 5000,
    "r1_gamma": 0.5,
    "r1_every": 4,
    "d_steps": 2,
}


def manifest_for(spec: TrainingSpec) -> ModelManifest:
    return ModelManifest(
        id="m_000000000001",
        name="",
        training_job_id="tj_000000000001",
        created_at=datetime.now(timezone.utc),
        spec=spec,
        dataset_id=spec.dataset_id,
        image_size=64,
        channels=1,
        classes=["a", "b", "c"],
    )


def test_every_spec_field_is_the_loops_or_named_as_not() -> None:
    assert set(TrainingSpec.model_fields) - NOT_THE_LOOPS == set(UNUSUAL)


def test_spec_values_reach_the_train_config() -> None:
    spec = TrainingSpec(dataset_id="digits", conditional=True, **UNUSUAL)
    assert all(getattr(spec, name) != TrainingSpec.model_fields[name].default for name in UNUSUAL)

    config = train_config(manifest_for(spec))
    network_fields = {field.name for field in fields(NetworkSpec)}
    for name, value in UNUSUAL.items():
        holder = config.network if name in network_fields else config
        assert getattr(holder, name) == value, name
    assert (config.network.image_size, config.network.channels, config.network.num_classes) == (64, 1, 3)
    assert {field.name for field in fields(TrainConfig)} - {"network", "channels_last"} <= set(UNUSUAL)


def test_an_unconditional_spec_has_no_classes() -> None:
    config = train_config(manifest_for(TrainingSpec(dataset_id="digits")))
    assert config.network.num_classes == 0


def test_the_recipe_defaults_are_todays_recipe() -> None:
    """Until bench/quality.py picks a new default, a spec that names no recipe trains as before them."""
    config = train_config(manifest_for(TrainingSpec(dataset_id="digits")))
    recipe = (config.network.architecture, config.augment, config.r1_gamma, config.d_steps)
    assert recipe == ("dcgan", "none", 0.0, 1)


def test_an_unknown_augment_policy_is_refused_naming_the_allowed_ones() -> None:
    with pytest.raises(ValidationError) as error:
        TrainingSpec(dataset_id="digits", augment="flip")
    (problem,) = error.value.errors()
    assert problem["loc"] == ("augment",)
    assert all(repr(policy) in problem["msg"] for policy in AUGMENT_POLICIES)


def test_new_conditional_models_take_the_label_at_the_input() -> None:
    """Until bench/conditioning.py shows conditional BatchNorm ahead (docs/benchmarks.md)."""
    config = train_config(manifest_for(TrainingSpec(dataset_id="digits", conditional=True)))
    assert config.network.conditioning == "input" and not config.network.conditional_batch_norm


def test_a_manifest_from_before_conditioning_trains_its_input_conditioned_generator() -> None:
    """A stored spec without `conditioning` is of a model whose G took the label at its input: resuming
    or serving it builds that G, whatever the default for new specs."""
    spec = TrainingSpec(dataset_id="digits", conditional=True, conditioning="batchnorm")
    stored = json.loads(manifest_for(spec).model_dump_json())
    del stored["spec"]["conditioning"]
    manifest = ModelManifest.model_validate_json(json.dumps(stored))
    assert manifest.spec.conditioning == "input" and train_config(manifest).network.conditioning == "input"


def test_an_unknown_conditioning_is_refused_naming_the_allowed_ones() -> None:
    with pytest.raises(ValidationError) as error:
        TrainingSpec(dataset_id="digits", conditioning="film")
    (problem,) = error.value.errors()
    assert problem["loc"] == ("conditioning",)
    assert all(repr(name) in problem["msg"] for name in CONDITIONINGS)
