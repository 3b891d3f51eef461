"""Checkpoint files of a training run: `checkpoints/step-NNNNNN.pt`, written atomically, oldest pruned."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import torch

from models.atomic import atomic_writer

CHECKPOINT_NAME = re.compile(r"^step-(\d{6,})\.pt$")


def checkpoint_path(folder: Path, step: int) -> Path:
    return folder / f"step-{step:06d}.pt"


def list_checkpoints(folder: Path) -> list[int]:
    """Steps of the checkpoints in `folder`, oldest first."""
    if not folder.is_dir():
        return []
    steps = (CHECKPOINT_NAME.match(entry.name) for entry in folder.iterdir())
    return sorted(int(match.group(1)) for match in steps if match)


def save_checkpoint(folder: Path, step: int, state: dict[str, Any], keep: int) -> Path:
    """Write the checkpoint of `step`, then delete all but the newest `keep` (0 keeps all)."""
    path = checkpoint_path(folder, step)
    with atomic_writer(path) as handle:
        torch.save(state, handle)
    if keep > 0:
        for old_step in list_checkpoints(folder)[:-keep]:
            checkpoint_path(folder, old_step).unlink(missing_ok=True)
    return path


def load_checkpoint(folder: Path, step: int | None = None, device: str | torch.device = "cpu") -> dict:
    """Load the checkpoint of `step`, or the newest one. FileNotFoundError when there is none."""
    if step is None:
        steps = list_checkpoints(folder)
        if not steps:
            raise FileNotFoundError(f"no checkpoint in {folder}")
        step = steps[-1]
    return torch.load(checkpoint_path(folder, step), map_location=device, weights_only=True)
