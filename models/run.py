"""A training run on disk: the loop plus its files, in one folder.

    checkpoints/step-NNNNNN.pt   G, D, G-EMA, both optimisers, step, RNG (see Trainer.state_dict)
    samples/step-NNNNNN.png      a grid from fixed latents: the progress picture
    metrics.jsonl                one JSON line per logging step
    evaluations/                 FID and friends of checkpoints (written by the `evaluate` callback)

A run resumes from its newest checkpoint; metrics logged after that checkpoint are dropped, since the
resumed run logs those steps again.

Over several devices (models.distributed) rank 0 runs `run_training` and writes every file; the other
ranks run `follow_training`, which makes the same collective calls in the same order.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from models.checkpoints import load_checkpoint, save_checkpoint
from models.distributed import share_state
from models.training import StepMetrics, Trainer
from workers.shared.atomic import atomic_write_bytes, atomic_write_text
from workers.shared.imaging import grid_png
from workers.shared.layout import (
    best_evaluation,
    checkpoint_steps,
    metrics_path,
    read_evaluations,
    read_metrics,
    sample_path,
)


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite; the newest checkpoint is the last good state."""


class CheckpointWriteFailed(RuntimeError):
    """A checkpoint could not be written (disk full, read-only); the newest one on disk is intact."""


@dataclass(frozen=True)
class Schedule:
    steps: int
    checkpoint_every: int = 500
    sample_every: int = 250
    log_every: int = 10
    keep_checkpoints: int = 3
    eval_every: int = 0  # 0: no evaluation during training


def resume_newest(trainer: Trainer, folder: Path) -> int:
    """Load the newest checkpoint into `trainer` if there is one; return the step it continues from."""
    if checkpoint_steps(folder):
        trainer.load_state_dict(load_checkpoint(folder, device=trainer.device))
        _truncate_metrics(folder, after_step=trainer.step)
    return trainer.step


def share_resumed(trainer: Trainer) -> None:
    """Over several devices: rank 0's state (resumed by resume_newest, or fresh) on every other rank."""
    shard = trainer.shard
    if not shard.distributed:
        return
    state = share_state(trainer.state_dict() if shard.rank == 0 and trainer.step else None, shard)
    if shard.rank != 0 and state is not None:
        trainer.load_state_dict(state)


def run_training(
    trainer: Trainer,
    folder: Path,
    schedule: Schedule,
    on_log: Callable[[StepMetrics], None] = lambda metrics: None,
    should_stop: Callable[[], bool] = lambda: False,
    evaluate: Callable[[Trainer], None] | None = None,
    on_checkpoint: Callable[[int], None] = lambda step: None,
) -> Literal["completed", "stopped"]:
    """Train until `schedule.steps`, writing samples, checkpoints and metrics on schedule.

    When an evaluation is due (`schedule.eval_every`, see _due), a checkpoint is written and `evaluate`
    judges the trainer's EMA generator (storing an evaluation row); the best checkpoint by FID is then
    kept however old. `should_stop` is asked before every step; when it says yes, a checkpoint of the
    current step is written and the run returns "stopped". `on_checkpoint` hears the step of every
    checkpoint written. Raises TrainingDiverged on a non-finite loss.
    """
    folder.mkdir(parents=True, exist_ok=True)
    last_checkpoint = trainer.step
    while trainer.step < schedule.steps:
        if should_stop():
            if trainer.step != last_checkpoint:
                _save(trainer, folder, schedule)
                on_checkpoint(trainer.step)
            return "stopped"
        metrics = trainer.train_step()
        if not (math.isfinite(metrics.loss_d) and math.isfinite(metrics.loss_g)):
            raise TrainingDiverged(
                f"non-finite loss at step {metrics.step} (loss_d={metrics.loss_d}, loss_g={metrics.loss_g})"
            )
        step, final = trainer.step, trainer.step == schedule.steps
        if step % schedule.log_every == 0 or final or step == 1:
            _append_metrics(metrics_path(folder), metrics)
            on_log(metrics)
        if step % schedule.sample_every == 0 or final:
            images, columns = trainer.sample_grid()
            atomic_write_bytes(sample_path(folder, step), grid_png(images, columns))
        evaluating = evaluate is not None and _due(step, schedule.eval_every, final)
        if step % schedule.checkpoint_every == 0 or final or evaluating:
            _save(trainer, folder, schedule)
            last_checkpoint = step
            on_checkpoint(step)
        if evaluating:
            evaluate(trainer)
    return "completed"


def follow_training(trainer: Trainer, steps: int) -> None:
    """The loop of a rank other than 0 in a run over several devices: run_training's collectives, none of
    its files. Each step first hears rank 0's stop decision (its `should_stop` is `shard.agree(...)`),
    then trains; the logged losses are the global batch's, the same on every rank, so a non-finite one
    ends every rank (rank 0 raises TrainingDiverged)."""
    while trainer.step < steps and not trainer.shard.agree(False):
        metrics = trainer.train_step()
        if not (math.isfinite(metrics.loss_d) and math.isfinite(metrics.loss_g)):
            return


def _due(step: int, every: int, final: bool) -> bool:
    """Whether an evaluation is due: every `every` steps (0: never), and at the end of a run that
    lasted at least that long (a 300-step run with `every` 500 is never judged)."""
    return every > 0 and (step % every == 0 or (final and step >= every))


def _save(trainer: Trainer, folder: Path, schedule: Schedule) -> None:
    best = best_evaluation(read_evaluations(folder), checkpoint_steps(folder))
    protect = frozenset([best["step"]]) if best else frozenset()
    try:
        save_checkpoint(folder, trainer.step, trainer.state_dict(), schedule.keep_checkpoints, protect)
    except OSError as error:
        newest = checkpoint_steps(folder)
        kept = (
            f"the newest checkpoint, step {newest[-1]}, is intact"
            if newest
            else "there is no earlier checkpoint"
        )
        raise CheckpointWriteFailed(
            f"could not write the checkpoint of step {trainer.step} ({error}); {kept}"
        ) from error


def _append_metrics(path: Path, metrics: StepMetrics) -> None:
    with path.open("a") as handle:
        handle.write(json.dumps(metrics.as_dict()) + "\n")


def _truncate_metrics(run: Path, after_step: int) -> None:
    kept = [row for row in read_metrics(run) if row["step"] <= after_step]
    atomic_write_text(metrics_path(run), "".join(json.dumps(row) + "\n" for row in kept))
