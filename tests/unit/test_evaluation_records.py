"""Evaluation rows on disk: which checkpoint is best, and that training keeps it and judges on schedule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from models.checkpoints import save_checkpoint
from models.networks import NetworkSpec
from models.run import Schedule, run_training
from models.training import TrainConfig, Trainer
from workers.jobs.training import evaluation_plan
from workers.shared.atomic import atomic_write_text
from workers.shared.contract import TrainingSpec
from workers.shared.layout import best_evaluation, checkpoint_steps, evaluation_path, read_evaluations
from workers.shared.plots import quality_curve_png


def row(step: int, samples: int, fid: float) -> dict:
    return {"step": step, "samples": samples, "fid": fid, "kid": fid / 1000}


def test_best_is_the_lowest_fid_of_the_most_used_sample_count() -> None:
    rows = [row(100, 1000, 50.0), row(200, 1000, 40.0), row(300, 1000, 45.0), row(300, 5000, 10.0)]
    assert best_evaluation(rows, [100, 200, 300])["step"] == 200  # 5000 has one row: not compared
    assert best_evaluation(rows, [100, 300])["step"] == 300  # 200's checkpoint is gone
    assert best_evaluation([row(100, 1000, 5.0), row(200, 5000, 1.0)], [100, 200])["samples"] == 5000
    assert best_evaluation([{"step": 100, "samples": 10, "kid": 0.1}], [100]) is None  # no FID asked


def test_rows_are_read_back_by_step(tmp_path: Path) -> None:
    for step, fid in [(200, 1.0), (100, 2.0)]:
        atomic_write_text(evaluation_path(tmp_path, step, 10), json.dumps(row(step, 10, fid)))
    assert [r["step"] for r in read_evaluations(tmp_path)] == [100, 200]


def test_pruning_spares_protected_checkpoints(tmp_path: Path) -> None:
    for step in (1, 2, 3, 4):
        save_checkpoint(tmp_path, step, {"step": step}, keep=2, protect=frozenset([1]))
    assert checkpoint_steps(tmp_path) == [1, 3, 4]


def tiny_trainer() -> Trainer:
    network = NetworkSpec(image_size=32, channels=1, latent_dim=8, base_channels=4)
    images = np.random.default_rng(0).integers(0, 256, (16, 1, 32, 32), dtype=np.uint8)
    return Trainer(TrainConfig(network=network, batch_size=4, steps=12), images)


def test_training_judges_on_schedule_and_keeps_the_best_checkpoint(tmp_path: Path) -> None:
    fids = {4: 10.0, 8: 20.0, 12: 30.0}  # the first checkpoint is the best
    judged: list[int] = []

    def evaluate(trainer: Trainer) -> None:
        judged.append(trainer.step)
        assert trainer.step in checkpoint_steps(tmp_path), "judged before its checkpoint was written"
        path = evaluation_path(tmp_path, trainer.step, 10)
        atomic_write_text(path, json.dumps(row(trainer.step, 10, fids[trainer.step])))

    schedule = Schedule(steps=12, checkpoint_every=4, sample_every=100, keep_checkpoints=1, eval_every=4)
    run_training(tiny_trainer(), tmp_path, schedule, evaluate=evaluate)
    assert judged == [4, 8, 12]
    assert checkpoint_steps(tmp_path) == [4, 12]


def test_a_run_shorter_than_the_interval_is_not_judged(tmp_path: Path) -> None:
    judged: list[int] = []
    schedule = Schedule(steps=3, checkpoint_every=100, sample_every=100, eval_every=5)
    run_training(tiny_trainer(), tmp_path, schedule, evaluate=lambda trainer: judged.append(trainer.step))
    assert judged == []
    schedule = Schedule(steps=7, checkpoint_every=100, sample_every=100, eval_every=5)
    run_training(tiny_trainer(), tmp_path / "longer", schedule, evaluate=lambda t: judged.append(t.step))
    assert judged == [5, 7]


def test_quality_plot_is_a_picture_with_or_without_rows(tmp_path: Path) -> None:
    for rows, best in ([], None), ([row(100, 10, 50.0), row(200, 10, 30.0)], 200):
        path = tmp_path / "quality.png"
        path.write_bytes(quality_curve_png(rows, best))
        with Image.open(path) as picture:
            assert picture.format == "PNG" and picture.size == (640, 480)


def test_evaluation_plan_follows_the_spec_else_the_device() -> None:
    spec = TrainingSpec(dataset_id="digits", steps=3000)
    assert evaluation_plan(spec, torch.device("cuda")) == (1000, 5000)
    assert evaluation_plan(spec, torch.device("cpu")) == (0, 500)  # off: it would cost more than training
    chosen = TrainingSpec(dataset_id="digits", steps=3000, eval_every=0, eval_samples=64)
    assert evaluation_plan(chosen, torch.device("cuda")) == (0, 64)
