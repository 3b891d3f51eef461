"""RQ job functions: plain functions that the API enqueues by name (see workers.shared.contract)."""

from __future__ import annotations

import copy
import logging
import time
from pathlib import Path
from typing import Any

import torch

from models.devices import device_memory_bytes
from models.encoder import save_encoder, train_encoder
from models.run import (
    CheckpointWriteFailed,
    Schedule,
    TrainingDiverged,
    resume_newest,
    run_training,
    share_resumed,
)
from models.training import StepMetrics, TrainConfig, Trainer
from workers.jobs.evaluation import ModelEvaluator
from workers.jobs.multi_device import NotEnoughDevices, RankFailed, TrainerPlan, device_group, rank_threads
from workers.jobs.runtime import Runtime, current_runtime
from workers.shared.contract import METRICS, TrainingSpec
from workers.shared.footprint import DoesNotFit, check_fits, training_footprint
from workers.shared.layout import encoder_path
from workers.shared.object_store import StoreUnavailable
from workers.shared.progress import cancel_requested, publish_progress
from workers.shared.response_bodies import TrainingOutcome
from workers.shared.storage import FINISHED_STATUSES, ModelManifest, utc_now
from workers.shared.webhooks import TrainingWebhook

CANCEL_CHECK_SECONDS = 0.5

log = logging.getLogger("ganforge.training")


def train_model(model_id: str) -> dict[str, Any]:
    """Train (or resume) the model `model_id` as its manifest describes, until done or cancelled."""
    runtime = current_runtime()
    storage = runtime.storage
    manifest = storage.read_model(model_id)
    if manifest is None:
        raise FileNotFoundError(f"model {model_id} does not exist")
    run_dir = storage.model_dir(model_id)
    progress = TrainingProgress(runtime, manifest)

    def checkpointed(step: int) -> None:
        try:
            storage.publish_run(model_id, manifest.spec.keep_checkpoints)
        except StoreUnavailable as error:  # training goes on; the next checkpoint publishes both
            log.warning(
                "training job %s: checkpoint %d not published yet: %s", manifest.training_job_id, step, error
            )
        progress.on_checkpoint(step)

    devices = manifest.spec.devices
    threads = rank_threads(runtime.device, devices, runtime.settings.torch_threads)
    try:
        _check_fits(runtime, manifest)
        plan = _trainer_plan(runtime, manifest)
        storage.pull_run(model_id)
        with device_group(plan, runtime.device, devices, threads) as shard:
            trainer = plan.build(shard)
            resume_newest(trainer, run_dir)
            share_resumed(trainer)
            manifest = storage.update_model(
                model_id,
                status="running",
                started_at=utc_now(),
                finished_at=None,
                error=None,
                device=str(runtime.device) if devices == 1 else f"{runtime.device.type} ×{devices}",
            )
            progress.start(trainer.step)
            outcome = run_training(
                trainer,
                run_dir,
                _schedule(manifest, runtime.device),
                on_log=progress.on_log,
                should_stop=lambda: shard.agree(progress.cancel_requested()),
                evaluate=TrainingEvaluation(runtime, manifest, progress),
                on_checkpoint=checkpointed,
            )
        if outcome == "completed" and manifest.spec.encoder_steps:
            _train_encoder(trainer, run_dir, manifest, progress)
        storage.publish_run(model_id, manifest.spec.keep_checkpoints)  # all of it, before the status
    except Exception as error:
        known = TrainingDiverged | CheckpointWriteFailed | DoesNotFit | NotEnoughDevices | RankFailed
        reason = str(error) if isinstance(error, known) else f"{type(error).__name__}: {error}"
        storage.update_model(model_id, status="failed", error=reason, finished_at=utc_now())
        progress.publish("failed", progress.step, error=reason)
        raise
    status = "completed" if outcome == "completed" else "canceled"
    storage.update_model(model_id, status=status, finished_at=utc_now())
    progress.publish(status, trainer.step)
    return TrainingOutcome(model_id=model_id, status=status, step=trainer.step).model_dump()


def _check_fits(runtime: Runtime, manifest: ModelManifest) -> None:
    """DoesNotFit when this worker cannot hold the job. The API checked the spec against the memory
    workers declare; only the worker knows its device (a GPU smaller than declared, a smaller host)."""
    dataset = runtime.storage.read_dataset(manifest.dataset_id)
    images = dataset.count if dataset else 0
    footprint = training_footprint(manifest.network, manifest.spec.batch_size, images)
    device_memory = device_memory_bytes(runtime.device)
    if device_memory is not None:
        check_fits(footprint, device_memory, f"{runtime.device} has")
    else:
        where = "this worker has (GANFORGE_WORKER_MEMORY_MB, else the host's memory)"
        check_fits(footprint, runtime.settings.worker_memory_bytes(), where)


def _train_encoder(
    trainer: Trainer, run_dir: Path, manifest: ModelManifest, progress: TrainingProgress
) -> None:
    """Age-cGAN's encoder for inversion, fitted on the finished generator's own images: E(G(z, y)) ≈ z."""
    if encoder_path(run_dir).is_file():
        return  # a resumed job that already has it
    steps = manifest.spec.encoder_steps
    progress.publish("running", trainer.step, phase="encoder", encoder_step=0, encoder_steps=steps)

    def report(step: int, loss: float) -> None:
        if step % 50 == 0 or step == steps:
            progress.publish(
                "running",
                trainer.step,
                phase="encoder",
                encoder_step=step,
                encoder_steps=steps,
                encoder_loss=loss,
            )

    generator = copy.deepcopy(trainer.generator_ema)
    encoder = train_encoder(
        generator, steps, batch_size=manifest.spec.batch_size, seed=manifest.spec.seed, on_step=report
    )
    save_encoder(encoder_path(run_dir), encoder)


def _trainer_plan(runtime: Runtime, manifest: ModelManifest) -> TrainerPlan:
    spec = manifest.spec
    dataset_dir = runtime.storage.dataset_files(spec.dataset_id)
    return TrainerPlan(train_config(manifest).as_dict(), dataset_dir, spec.conditional)


def train_config(manifest: ModelManifest) -> TrainConfig:
    """The training loop's configuration from the model's spec and its dataset's shape."""
    spec = manifest.spec
    return TrainConfig(
        network=manifest.network,
        loss=spec.loss,
        label_smoothing=spec.label_smoothing,
        batch_size=spec.batch_size,
        steps=spec.steps,
        lr_g=spec.lr_g,
        lr_d=spec.lr_d,
        betas=spec.betas,
        ema_decay=spec.ema_decay,
        seed=spec.seed,
        precision=spec.precision,
        compile=spec.compile,
        augment=spec.augment,
        ada_target=spec.ada_target,
        ada_speed_images=spec.ada_speed_images,
        r1_gamma=spec.r1_gamma,
        r1_every=spec.r1_every,
        d_steps=spec.d_steps,
    )


def _schedule(manifest: ModelManifest, device: torch.device) -> Schedule:
    spec = manifest.spec
    return Schedule(
        steps=spec.steps,
        checkpoint_every=spec.checkpoint_every,
        sample_every=spec.sample_every,
        log_every=spec.log_every,
        keep_checkpoints=spec.keep_checkpoints,
        eval_every=evaluation_plan(spec, device)[0],
    )


def evaluation_plan(spec: TrainingSpec, device: torch.device) -> tuple[int, int]:
    """(eval_every, eval_samples): the spec's, else sized so that judging costs about a tenth of training
    on the device. A GPU runs Inception-v3 fast enough for 5,000 images every 1,000 steps. On a CPU one
    image costs about as much as a training step of 64 (bench/eval_speed.py), so no evaluation fits a
    tenth: it is off unless the spec asks (docs/quality.md)."""
    on_gpu = device.type == "cuda"
    every = spec.eval_every if spec.eval_every is not None else (1000 if on_gpu else 0)
    samples = spec.eval_samples if spec.eval_samples is not None else (5000 if on_gpu else 500)
    return every, samples


class TrainingEvaluation:
    """The training loop's `evaluate` callback: FID, KID and precision/recall of the EMA generator on
    `eval_samples` images, stored as the checkpoint's evaluation row, with progress on the training job.
    FID per class is left to evaluation requests: each class costs a 2048-d matrix square root."""

    def __init__(self, runtime: Runtime, manifest: ModelManifest, progress: TrainingProgress):
        self.manifest = manifest
        self.device = runtime.device
        self.progress = progress
        self.evaluator = ModelEvaluator(runtime, manifest, self._report)
        self._step = 0

    def __call__(self, trainer: Trainer) -> None:
        self._step = trainer.step
        samples = evaluation_plan(self.manifest.spec, self.device)[1]
        row = self.evaluator.evaluate(
            trainer.generator_ema, trainer.step, samples, METRICS, "training", per_class=False
        )
        self.progress.evaluated(row)

    def _report(self, phase: str, done: int, total: int) -> None:
        self.progress.publish("running", self._step, phase=f"evaluation: {phase}", done=done, total=total)


class TrainingProgress:
    """Turns the loop's step metrics into progress snapshots (rate, ETA), sends them to the job's
    webhook as its events, and answers cancel checks, asking Redis at most every CANCEL_CHECK_SECONDS."""

    def __init__(self, runtime: Runtime, manifest: ModelManifest):
        self.redis = runtime.redis
        self.job_id = manifest.training_job_id
        self.steps = manifest.spec.steps
        self.batch_size = manifest.spec.batch_size
        self.step = 0
        self.webhook = TrainingWebhook(
            runtime.redis, runtime.storage, manifest, runtime.settings.webhook_progress_seconds
        )
        self._started = False
        self._snapshot: dict[str, Any] = {}
        self._last_log: tuple[int, float] | None = None
        self._last_cancel_check = 0.0
        self._metrics: dict[str, float] = {}

    def start(self, step: int) -> None:
        """The run (new, resumed or recovered) is under way at `step`."""
        self.publish("running", step)
        self.webhook.event("start", step, self._snapshot)
        self._started = True

    def on_checkpoint(self, step: int) -> None:
        self.webhook.event("checkpoint", step, self._snapshot)

    def on_log(self, metrics: StepMetrics) -> None:
        now = time.perf_counter()
        if self._last_log is not None and metrics.step > self._last_log[0]:
            steps_done = metrics.step - self._last_log[0]
            rate = steps_done * self.batch_size / (now - self._last_log[1])
        else:
            rate = metrics.images_per_second
        if self._last_log is None:  # the run's (or resumed run's) first step: includes torch.compile's work
            self._metrics["first_step_seconds"] = self.batch_size / metrics.images_per_second
        self._last_log = (metrics.step, now)
        self._metrics |= {
            "loss_d": metrics.loss_d,
            "loss_g": metrics.loss_g,
            "d_real": metrics.d_real,
            "d_fake": metrics.d_fake,
            "augment_p": metrics.augment_p,
            "images_per_second": rate,
            "eta_seconds": (self.steps - metrics.step) * self.batch_size / rate if rate > 0 else None,
        }
        self.publish("running", metrics.step)

    def evaluated(self, row: dict[str, Any]) -> None:
        """Show the newest figures, and restart the images/s window: evaluation time is not training's."""
        self._metrics |= {name: row[name] for name in ("fid", "kid") if name in row}
        self._metrics["evaluation_seconds"] = row["seconds"]
        if self._last_log is not None:
            self._last_log = (self._last_log[0], time.perf_counter())
        self.publish("running", row["step"])

    def publish(self, status: str, step: int, **extra: Any) -> None:
        self.step = step
        snapshot = {"status": status, "step": step, "steps": self.steps, **self._metrics, **extra}
        if status != "running":
            snapshot["eta_seconds"] = None
        self._snapshot = {**snapshot, "updated_at": utc_now().isoformat()}
        publish_progress(self.redis, self.job_id, self._snapshot)
        if status in FINISHED_STATUSES:
            self.webhook.event("completed", f"{status}-{step}", self._snapshot)
        elif self._started:
            self.webhook.event("progress", step, self._snapshot)

    def cancel_requested(self) -> bool:
        now = time.monotonic()
        if now - self._last_cancel_check < CANCEL_CHECK_SECONDS:
            return False
        self._last_cancel_check = now
        return cancel_requested(self.redis, self.job_id)
