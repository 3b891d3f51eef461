"""Checks of request inputs against a model — its checkpoints, labels, latent size and named latents —
shared by the routes that use a model. Each failure is a 4xx naming the field."""

from __future__ import annotations

from typing import Any

from fastapi import HTTPException

from app.errors import field_error
from workers.shared.contract import LatentRef, NamedLatent, VectorLatent
from workers.shared.storage import ModelManifest, Storage


def checkpoint_step(model: ModelManifest, step: int | str | None, storage: Storage) -> int:
    """`step` if the model has that checkpoint; its newest one for None or "newest"; for "best" the
    checkpoint with the lowest FID among its evaluations (409 when it has none)."""
    steps = storage.checkpoint_steps(model.id)
    if not steps:
        raise HTTPException(409, f"model {model.id!r} has no checkpoint yet (status: {model.status})")
    if step is None or step == "newest":
        return steps[-1]
    if step == "best":
        best = storage.best_evaluation(model.id)
        if best is None:
            raise HTTPException(
                409,
                f"model {model.id!r} has no evaluated checkpoint to call best: "
                f"POST /v1/models/{model.id}/evaluations first",
            )
        return best["step"]
    if step not in steps:
        raise HTTPException(404, f"model {model.id!r} has no checkpoint at step {step}; it has {steps}")
    return step


def checked_labels(model: ModelManifest, labels: list[str] | None, field: str) -> list[str] | None:
    """Labels the model has, or None; a label for an unconditional model or an unknown one is a 422."""
    if labels is None:
        return None
    if not model.conditional:
        raise field_error("body", field, f"model {model.id!r} is unconditional: it takes no label")
    unknown = [label for label in labels if label not in model.classes]
    if unknown:
        raise field_error(
            "body", field, f"unknown label {unknown[0]!r}; this model's labels are {model.classes}"
        )
    return labels


def required_label(model: ModelManifest, label: str | None, field: str) -> str | None:
    """A conditional model needs a label here (there is no sensible default); an unconditional one none."""
    if model.conditional and label is None:
        raise field_error("body", field, f"model {model.id!r} is conditional: give one of {model.classes}")
    checked = checked_labels(model, [label] if label is not None else None, field)
    return checked[0] if checked else None


def latent_definition(model: ModelManifest, ref: LatentRef, storage: Storage, field: str) -> dict[str, Any]:
    """A latent reference as the workers take it: names looked up, vectors checked against latent_dim."""
    if isinstance(ref, NamedLatent):
        return named_latents(model, [ref.name], storage)[ref.name]
    if isinstance(ref, VectorLatent) and len(ref.vector) != model.spec.latent_dim:
        raise field_error(
            "body",
            field,
            f"the vector has {len(ref.vector)} values; this model's latent_dim is {model.spec.latent_dim}",
        )
    return ref.model_dump()


def named_latents(model: ModelManifest, names: list[str], storage: Storage) -> dict[str, dict[str, Any]]:
    """The definitions of `names`; 404 naming every unknown one."""
    records = {name: storage.read_latent(model.id, name) for name in dict.fromkeys(names)}
    unknown = [name for name, record in records.items() if record is None]
    if unknown:
        raise HTTPException(404, f"model {model.id!r} has no named latent {', '.join(map(repr, unknown))}")
    return {name: record.latent for name, record in records.items()}
