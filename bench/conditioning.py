"""Does G give the asked-for label more often with conditional BatchNorm than with the label at its input?

The README walkthrough's data and model (bench.label_smoothing: circles and squares at 32 px, the
training spec's defaults, conditional DCGAN), trained once per seed and `conditioning` ("input": the
label embedding concatenated to z; "batchnorm": every BatchNorm's scale and shift predicted from it) and
judged on its EMA generator's images at each of `--steps`:

- label accuracy: bench.label_smoothing's fill-ratio judge gives each generated image the label it was
  asked for (its 5-fold accuracy on the real shapes is printed);
- label effect: how much the image changes when only the label changes (the same latents rendered as
  each label: mean pixel distance) over how much it changes between latents. Near 0: G ignores the label;
- spread: bench.label_smoothing's, generated over real (near 0: every latent gives the same picture);
- images/s: training images per second over the steps since the setting's previous row (the settings
  take turns at each of `--steps`, so both see much the same load on a shared machine).

    python -m bench.conditioning                               # 2 seeds × 2 settings, 1,500 steps each
    python -m bench.conditioning --seeds 0 --steps 10 --samples 16    # a smoke run
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from bench.label_smoothing import fill_ratio, judged_shapes, spread
from models.networks import Generator, NetworkSpec
from models.sampling import generate, latents_for_seeds
from models.training import TrainConfig, Trainer
from workers.shared.recipes import CONDITIONINGS


def label_effect(generator: Generator, latents: torch.Tensor, classes: int) -> float:
    """Mean pixel distance between the images of the same latents under two labels, over that between
    the images of neighbouring latents under one label."""
    renders = [generate(generator, latents, torch.full((len(latents),), label)) for label in range(classes)]
    renders = [images.astype(np.float32) for images in renders]
    across_labels = np.mean([np.abs(renders[0] - other).mean() for other in renders[1:]])
    across_latents = np.abs(renders[0] - np.roll(renders[0], 1, axis=0)).mean()
    return float(across_labels / across_latents)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--conditioning", nargs="+", choices=CONDITIONINGS, default=list(CONDITIONINGS))
    parser.add_argument("--steps", type=int, nargs="+", default=[500, 1000, 1500], help="judged at each")
    parser.add_argument("--batch-size", type=int, default=64, help="the training spec's default")
    parser.add_argument("--samples", type=int, default=200, help="generated images judged per row")
    args = parser.parse_args()

    dataset, judge, real_spread = judged_shapes(args.samples)
    classes = len(dataset.classes)
    print(f"batch {args.batch_size}, {args.samples} images judged per row\n")
    print("| conditioning | seed | steps | label accuracy | label effect | spread | images/s |")
    print("|---|---:|---:|---:|---:|---:|---:|")

    asked = torch.arange(args.samples) % classes
    latents = latents_for_seeds(range(args.samples), NetworkSpec().latent_dim)
    for seed in args.seeds:
        trainers = {
            conditioning: Trainer(
                TrainConfig(
                    network=NetworkSpec(num_classes=classes, conditioning=conditioning),
                    seed=seed,
                    batch_size=args.batch_size,
                ),
                dataset.images,
                dataset.labels,
            )
            for conditioning in args.conditioning
        }
        for steps in sorted(args.steps):
            for conditioning, trainer in trainers.items():
                started, first = time.perf_counter(), trainer.step
                while trainer.step < steps:
                    trainer.train_step()
                speed = (trainer.step - first) * args.batch_size / (time.perf_counter() - started)
                images = generate(trainer.generator_ema, latents, asked)
                accuracy = (judge.predict(fill_ratio(images)) == asked.numpy()).mean()
                effect = label_effect(trainer.generator_ema, latents, classes)
                print(
                    f"| {conditioning} | {seed} | {steps} | {accuracy:.3f} | {effect:.2f} "
                    f"| {spread(images) / real_spread:.2f} | {speed:.0f} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
