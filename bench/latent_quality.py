"""Latent toolkit quality and latency, in one process on the CPU.

1. Train a conditional DCGAN on scikit-learn's digits (20 % of the images held out) and an encoder for it.
2. Invert images the model generated itself (true latent known) and held-out real digits with their
   labels: the encoder alone, optimisation from a random latent, and the encoder's guess refined by
   the same number of optimisation steps. Pixel MSE is on [-1, 1] pixels.
3. Latency of the toolkit's operations at 32 and 64 px with an untrained generator of full width.

    python -m bench.latent_quality                    # the full run: a few minutes on 2 CPU cores
    python -m bench.latent_quality --train-steps 100 --encoder-steps 50 --images 4 --repeats 2   # a smoke run
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import numpy as np
import torch

from bench.digits_models import add_training_arguments, progress, split_digits, train_models
from models.encoder import Encoder
from models.inversion import invert
from models.latents import interpolate, variations, weighted_sum
from models.networks import Discriminator, Generator, NetworkSpec
from models.sampling import generate, latents_for_seeds
from workers.shared.expressions import parse_expression


def inversion_table(
    args: argparse.Namespace,
    generator: Generator,
    discriminator: Discriminator,
    encoder: Encoder,
    real: tuple[np.ndarray, np.ndarray],
) -> None:
    count, steps = args.images, args.invert_steps
    true_latents = latents_for_seeds(range(10_000, 10_000 + count), generator.spec.latent_dim)
    generated_labels = (torch.arange(count) % 10).tolist()
    with torch.no_grad():
        generated = generator(true_latents, torch.tensor(generated_labels))
    real_images = torch.from_numpy(real[0][:count]).float() / 127.5 - 1
    real_labels = real[1][:count].tolist()

    methods = {
        "random latent, no optimisation": {"steps": 0},
        "encoder alone": {"encoder": encoder, "steps": 0},
        f"optimisation from random ({steps} steps)": {"discriminator": discriminator, "steps": steps},
        f"encoder + optimisation ({steps} steps)": {
            "encoder": encoder,
            "discriminator": discriminator,
            "steps": steps,
        },
    }
    print(f"\n### Inversion: {count} generated images (true z known), {count} held-out real digits\n")
    print("| method | generated: pixel MSE | generated: ‖z − z*‖ | real: pixel MSE |")
    print("|---|---:|---:|---:|")
    for name, options in methods.items():
        progress(f"inverting: {name}")
        fake = [
            invert(generator, image, label, seed=index, **options)
            for index, (image, label) in enumerate(zip(generated, generated_labels, strict=True))
        ]
        true = [
            invert(generator, image, label, seed=index, **options)
            for index, (image, label) in enumerate(zip(real_images, real_labels, strict=True))
        ]
        latent_error = np.mean(
            [(r.latent - z).norm().item() for r, z in zip(fake, true_latents, strict=True)]
        )
        fake_mse, true_mse = np.mean([r.mse for r in fake]), np.mean([r.mse for r in true])
        print(f"| {name} | {fake_mse:.4f} | {latent_error:.2f} | {true_mse:.4f} |")
    norm = true_latents.norm(dim=1).mean()
    print(f"\n(‖z*‖ averages {norm:.2f}: a random guess is off by about √2 × that)")


def median_ms(operation: Callable[[], object], repeats: int) -> float:
    operation()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        operation()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def latency_row(args: argparse.Namespace, size: int) -> list[float]:
    spec = NetworkSpec(image_size=size, channels=3, latent_dim=100, base_channels=args.latency_base_channels)
    torch.manual_seed(args.seed)
    generator, discriminator, encoder = (
        Generator(spec).eval(),
        Discriminator(spec).eval(),
        Encoder(spec).eval(),
    )
    named = dict(zip(("a", "b", "c"), latents_for_seeds([1, 2, 3], spec.latent_dim), strict=True))
    target = torch.rand(3, size, size) * 2 - 1

    def interpolation() -> np.ndarray:
        return generate(generator, interpolate(latents_for_seeds([1, 2], spec.latent_dim), 8, "slerp"))

    def arithmetic() -> np.ndarray:
        result = weighted_sum([(weight, named[name]) for weight, name in parse_expression("a - b + 0.5*c")])
        return generate(generator, torch.cat([result[None], variations(result, 8, 0.25, seed=0)]))

    def inversion() -> object:
        return invert(
            generator, target, encoder=encoder, discriminator=discriminator, steps=args.invert_steps
        )

    return [median_ms(operation, args.repeats) for operation in (interpolation, arithmetic, inversion)]


def latency_table(args: argparse.Namespace) -> None:
    print(
        f"\n### Latency (median of {args.repeats}, ms; untrained networks, base_channels "
        f"{args.latency_base_channels}, latent 100, {torch.get_num_threads()} threads)\n"
    )
    columns = [
        "size",
        "interpolate: 2 keys + 8 frames → 10 images",
        "arithmetic: 3-term sum + 8 variations → 9 images",
        f"invert 1 image: encoder + {args.invert_steps} steps",
    ]
    print("| " + " | ".join(columns) + " |")
    print("|---:|---:|---:|---:|")
    for size in args.sizes:
        progress(f"latency at {size} px")
        print(f"| {size} | " + " | ".join(f"{cell:.1f}" for cell in latency_row(args, size)) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_training_arguments(parser)
    parser.add_argument("--images", type=int, default=64, help="generated and real images to invert")
    parser.add_argument("--invert-steps", type=int, default=100)
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64], help="for the latency table")
    parser.add_argument("--latency-base-channels", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    train_images, train_labels, held_images, held_labels = split_digits(args.seed)
    settings = ", ".join(f"{key} {value}" for key, value in vars(args).items())
    print(f"## Latent toolkit quality: {settings}\n")
    print(
        f"torch {torch.__version__}, CPU, {torch.get_num_threads()} threads; digits at 32 px: "
        f"{len(train_images)} for training, {len(held_images)} held out"
    )
    started = time.perf_counter()
    generator, discriminator, encoder = train_models(args, train_images, train_labels)
    inversion_table(args, generator, discriminator, encoder, (held_images, held_labels))
    latency_table(args)
    progress(f"done in {time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main()
