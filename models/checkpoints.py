"""Checkpoints of a training run (`checkpoints/step-NNNNNN.pt`), written atomically, oldest pruned."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from workers.shared.atomic import atomic_write_bytes
from workers.shared.layout import checkpoint_path, checkpoint_steps


def save_checkpoint(
    run: Path, step: int, state: dict[str, Any], keep: int, protect: frozenset[int] = frozenset()
) -> Path:
    """Write the checkpoint of `step`, then delete all but the newest `keep` (0 keeps all) and those of
    the steps in `protect` (the best checkpoint by FID)."""
    buffer = io.BytesIO()
    torch.save(state, buffer)  # serialised first, so a failing disk raises a plain OSError below
    path = checkpoint_path(run, step)
    atomic_write_bytes(path, buffer.getbuffer())
    if keep > 0:
        for old_step in checkpoint_steps(run)[:-keep]:
            if old_step not in protect:
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
