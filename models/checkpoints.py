"""Checkpoints of a training run (`checkpoints/step-NNNNNN.pt`), written atomically, oldest pruned."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from models.atomic import atomic_writer
from models.layout import checkpoint_path, checkpoint_steps


def save_checkpoint(run: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write the checkpoint of `step`, then delete all but the newest `keep` (0 keeps all)."""
    path = checkpoint_path(run, step)
    with atomic_writer(path) as handle:
        torch.save(state, handle)
    if keep > 0:
        for old_step in checkpoint_steps(run)[:-keep]:
            checkpoint_path(run, old_step).unlink(missing_ok=True)
    return path


def load_checkpoint(run: Path, step: int | None = None, device: str | torch.device = "cpu") -> dict:
    """Load the checkpoint of `step`, or the newest one. FileNotFoundError when there is none."""
    if step is None:
        steps = checkpoint_steps(run)
        if not steps:
            raise FileNotFoundError(f"no checkpoint in {run}")
        step = steps[-1]
    return torch.load(checkpoint_path(run, step), map_location=device, weights_only=True)
