"""Does training learn the walkthrough's shapes, with and without one-sided label smoothing?

The README walkthrough's data (scripts/make_demo_archive.py: circles and squares, read at 32 px as the
service reads an upload) and model (conditional DCGAN, the training spec's defaults), trained for
several seeds with `label_smoothing` 0 and 0.1, each run judged on its EMA generator's images by:

- label accuracy: a judge that tells a circle from a square by how much of its bounding box the shape
  fills (π/4 against 1; a logistic regression fitted on the real shapes, 5-fold accuracy printed) gives
  each generated image the label it was asked for;
- spread: the mean pixel distance between generated images over that between real ones. Near 1 for a
  generator as varied as the data; near 0 when every latent gives the same picture (the collapse that
  the walkthrough showed on one machine before label smoothing).

GAN training is chaotic: which seeds collapse differs from machine to machine.

    python -m bench.label_smoothing                    # 2 seeds × 2 settings: about 16 minutes on 2 cores
    python -m bench.label_smoothing --seeds 0 --steps 10 --samples 16   # a smoke run
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import pairwise_distances
from sklearn.model_selection import cross_val_score

from bench.transform_quality import features
from models.networks import NetworkSpec
from models.sampling import generate, latents_for_seeds
from models.training import TrainConfig, Trainer
from workers.shared.datasets.ingest import ingest_archive
from workers.shared.datasets.packed import PackedDataset

ROOT = Path(__file__).resolve().parents[1]


def walkthrough_shapes() -> PackedDataset:
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "shapes.zip"
        command = [sys.executable, str(ROOT / "scripts" / "make_demo_archive.py"), str(archive)]
        subprocess.run(command, check=True, capture_output=True)
        return ingest_archive(archive, image_size=32, channels=3, labels="folders")


def fill_ratio(images: np.ndarray) -> np.ndarray:
    """(N, 1): the share of each image's foreground bounding box that the foreground fills. Foreground:
    pixels far from the border's median colour (the shapes are dark on a light background)."""
    pixels = images.astype(np.float32)
    border = np.concatenate(
        [pixels[:, :, 0], pixels[:, :, -1], pixels[:, :, :, 0], pixels[:, :, :, -1]], axis=2
    )
    background = np.median(border, axis=2)[:, :, None, None]
    ratios = []
    for mask in np.abs(pixels - background).sum(axis=1) > 90:
        rows, columns = np.nonzero(mask)
        box = (np.ptp(rows) + 1) * (np.ptp(columns) + 1) if len(rows) else 1
        ratios.append(mask.sum() / box)
    return np.array(ratios)[:, None]


def spread(images: np.ndarray) -> float:
    return float(pairwise_distances(features(images)).mean())


def train(
    dataset: PackedDataset, seed: int, label_smoothing: float, steps: int
) -> tuple[Trainer, float, float]:
    """The trained run and its mean D(x), D(G(z)) over the last quarter of the steps."""
    network = NetworkSpec(image_size=32, channels=3, num_classes=len(dataset.classes))
    config = TrainConfig(network=network, seed=seed, label_smoothing=label_smoothing)
    trainer = Trainer(config, dataset.images, dataset.labels)
    beliefs = [trainer.train_step() for _ in range(steps)][-max(1, steps // 4) :]
    return trainer, np.mean([m.d_real for m in beliefs]), np.mean([m.d_fake for m in beliefs])


def judged_shapes(samples: int) -> tuple[PackedDataset, LogisticRegression, float]:
    """The walkthrough's shapes, the fill-ratio judge fitted on them, and the spread of `samples` of
    them; prints the set and the judge's 5-fold accuracy."""
    dataset = walkthrough_shapes()
    labels = np.asarray(dataset.labels)
    judge = LogisticRegression().fit(fill_ratio(dataset.images), labels)
    judge_accuracy = cross_val_score(LogisticRegression(), fill_ratio(dataset.images), labels, cv=5).mean()
    rng = np.random.default_rng(0)
    real_spread = spread(dataset.images[rng.choice(len(dataset.images), samples, replace=False)])
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; {len(labels)} shapes at 32 px,")
    print(f"classes {dataset.classes}; the judge (fill ratio): 5-fold accuracy {judge_accuracy:.3f}")
    return dataset, judge, real_spread


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--smoothing", type=float, nargs="+", default=[0.0, 0.1])
    parser.add_argument("--steps", type=int, default=3000, help="steps per run (as the walkthrough)")
    parser.add_argument("--samples", type=int, default=200, help="generated images judged per run")
    args = parser.parse_args()

    dataset, judge, real_spread = judged_shapes(args.samples)
    print(f"{args.steps} steps per run, {args.samples} images judged per run\n")
    print("| seed | label_smoothing | label accuracy | spread | D(x) | D(G(z)) | seconds |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for seed in args.seeds:
        for smoothing in args.smoothing:
            started = time.perf_counter()
            trainer, d_real, d_fake = train(dataset, seed, smoothing, args.steps)
            asked = torch.arange(args.samples) % len(dataset.classes)
            latents = latents_for_seeds(range(args.samples), trainer.config.network.latent_dim)
            images = generate(trainer.generator_ema, latents, asked)
            accuracy = (judge.predict(fill_ratio(images)) == asked.numpy()).mean()
            seconds = time.perf_counter() - started
            print(
                f"| {seed} | {smoothing:g} | {accuracy:.3f} | {spread(images) / real_spread:.2f} "
                f"| {d_real:.3f} | {d_fake:.3f} | {seconds:.0f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
