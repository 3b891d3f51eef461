"""What an evaluation costs: the FID network's images/s and an evaluation of --samples images, beside a
training step of the same model measured in the same run (the reference evaluation is budgeted
against: docs/quality.md sizes the defaults so judging costs about a tenth of training).

The generator is untrained (speed does not depend on training); the real set is --real random images.

    python -m bench.eval_speed                          # 5,000 samples against 5,000 real images
    python -m bench.eval_speed --samples 100 --real 100 --steps 2     # a smoke run
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from models.devices import pick_device
from models.evaluation import FeatureSet, fake_features, score
from models.metrics.inception import load_feature_network
from models.networks import NetworkSpec
from models.training import TrainConfig, Trainer
from workers.shared.contract import METRICS


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--samples", type=int, default=5000, help="generated images judged")
    parser.add_argument("--real", type=int, default=5000, help="real images (their features are timed too)")
    parser.add_argument("--steps", type=int, default=20, help="training steps timed for the reference")
    parser.add_argument("--device", default=None)
    args = parser.parse_args()
    device = pick_device(args.device)

    network = NetworkSpec(image_size=32, channels=3, num_classes=2)
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (args.real, 3, 32, 32), dtype=np.uint8)
    labels = rng.integers(0, 2, args.real)
    trainer = Trainer(TrainConfig(network=network), images, labels, device)
    trainer.train_step()  # warm-up
    started = time.perf_counter()
    for _ in range(args.steps):
        trainer.train_step()
    step_seconds = (time.perf_counter() - started) / args.steps

    features = load_feature_network(device)
    features.features(images[:8])  # warm-up
    started = time.perf_counter()
    real = FeatureSet(features.features(images), labels)
    real_seconds = time.perf_counter() - started
    started = time.perf_counter()
    fake = fake_features(features, trainer.generator_ema, args.samples, labels)
    render_seconds = time.perf_counter() - started
    started = time.perf_counter()
    score(real, fake, METRICS, ["a", "b"])
    score_seconds = time.perf_counter() - started

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {device}")
    print("| what | seconds | per image (ms) | images/s | training steps (batch 64) it equals |")
    print("|---|---:|---:|---:|---:|")
    rows = [
        ("a training step, batch 64, 32 px, base 64 (reference)", step_seconds, 64),
        (f"real features, {args.real} images", real_seconds, args.real),
        (f"samples rendered and featurised, {args.samples}", render_seconds, args.samples),
    ]
    for name, seconds, count in rows:
        print(
            f"| {name} | {seconds:.2f} | {seconds / count * 1e3:.1f} | {count / seconds:.1f} "
            f"| {seconds / step_seconds:.1f} |"
        )
    total = render_seconds + score_seconds
    print(
        f"| FID, FID per class, KID, precision/recall | {score_seconds:.2f} | – | – "
        f"| {score_seconds / step_seconds:.1f} |"
    )
    print(
        f"| an evaluation of {args.samples} samples (real features kept) | {total:.2f} | – | – "
        f"| {total / step_seconds:.1f} |"
    )


if __name__ == "__main__":
    main()
