"""A conditional DCGAN and its inversion encoder trained in-process on scikit-learn's digits, with 20 %
of the images held out: shared by bench/latent_quality.py and bench/transform_quality.py."""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from models.encoder import Encoder, train_encoder
from models.networks import Discriminator, Generator, NetworkSpec
from models.training import TrainConfig, Trainer
from workers.shared.datasets.builtin import builtin_digits


def add_training_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--train-steps", type=int, default=1500)
    parser.add_argument("--base-channels", type=int, default=32, help="of the trained digits GAN")
    parser.add_argument("--precision", default="auto", help="of GAN training: auto | fp32 | bf16")
    parser.add_argument("--encoder-steps", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def split_digits(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Train and held-out images and labels: a seeded permutation, the first 20 % held out."""
    digits = builtin_digits(32)
    order = np.random.default_rng(seed).permutation(len(digits.images))
    held, kept = order[: len(order) // 5], order[len(order) // 5 :]
    return digits.images[kept], digits.labels[kept], digits.images[held], digits.labels[held]


def train_models(
    args: argparse.Namespace, images: np.ndarray, labels: np.ndarray
) -> tuple[Generator, Discriminator, Encoder]:
    spec = NetworkSpec(
        image_size=32, channels=1, latent_dim=100, base_channels=args.base_channels, num_classes=10
    )
    config = TrainConfig(network=spec, batch_size=64, steps=args.train_steps, precision=args.precision)
    trainer = Trainer(config, images, labels)
    started = time.perf_counter()
    while trainer.step < args.train_steps:
        metrics = trainer.train_step()
        if metrics.step % 100 == 0 or metrics.step == args.train_steps:
            progress(
                f"GAN step {metrics.step}: loss_d {metrics.loss_d:.3f} loss_g {metrics.loss_g:.3f} "
                f"({time.perf_counter() - started:.0f} s)"
            )
    train_seconds = time.perf_counter() - started

    def report(step: int, loss: float) -> None:
        if step % 100 == 0 or step == args.encoder_steps:
            progress(f"encoder step {step}: z-MSE {loss:.4f}")

    started = time.perf_counter()
    encoder = train_encoder(trainer.generator_ema, args.encoder_steps, seed=args.seed, on_step=report)
    progress(f"trained: GAN {train_seconds:.0f} s, encoder {time.perf_counter() - started:.0f} s")
    return trainer.generator_ema, trainer.discriminator, encoder
