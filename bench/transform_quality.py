"""Face-aging style transform quality, measured on scikit-learn's digits (the same machinery as faces:
invert with the source label, keep z, render at each target label).

1. Train a conditional DCGAN and its encoder on 80 % of the digits (bench.digits_models).
2. Train a small classifier (an RBF SVM on the pixels) on the held-out 20 %: it never saw the GAN's
   training images, and judges the GAN's outputs.
3. Take real digits from the GAN's training split, transform each to all nine other labels, and report:
   target accuracy (the classifier assigns the transformed image its target label), source preservation
   (reconstruction MSE at the source label, and the classifier's agreement that the reconstruction
   keeps the source label) — for the encoder alone and for the encoder plus optimisation.

    python -m bench.transform_quality                       # a few minutes on 2 CPU cores
    python -m bench.transform_quality --train-steps 100 --encoder-steps 50 --images 5   # a smoke run
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from sklearn.model_selection import cross_val_score
from sklearn.svm import SVC

from bench.digits_models import add_training_arguments, progress, split_digits, train_models
from models.inversion import invert
from models.sampling import generate, latents_for_seeds


def features(images: np.ndarray) -> np.ndarray:
    return images.reshape(len(images), -1).astype(np.float32) / 255.0


def pixel_mse(image: np.ndarray, target: torch.Tensor) -> float:
    return float(((torch.from_numpy(image).float() / 127.5 - 1 - target) ** 2).mean())


def transform_row(models, classifier: SVC, images: np.ndarray, labels: np.ndarray, steps: int) -> tuple:
    """Target accuracy, source reconstruction MSE, share of reconstructions keeping the source label."""
    generator, discriminator, encoder = models
    hits = total = kept = 0
    errors = []
    for count, (image, source) in enumerate(zip(images, labels.tolist(), strict=True), 1):
        target = torch.from_numpy(image).float().div(127.5).sub(1)
        found = invert(generator, target, source, encoder=encoder, discriminator=discriminator, steps=steps)
        reconstruction = generate(generator, found.latent[None], torch.tensor([source]))
        errors.append(pixel_mse(reconstruction[0], target))
        kept += int(classifier.predict(features(reconstruction))[0] == source)
        others = torch.tensor([label for label in range(10) if label != source])
        transformed = generate(generator, found.latent[None].repeat(len(others), 1), others)
        hits += int((classifier.predict(features(transformed)) == others.numpy()).sum())
        total += len(others)
        if count % 10 == 0:
            progress(f"{steps} optimisation steps: {count}/{len(images)} images")
    return hits / total, float(np.mean(errors)), kept / len(images)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_training_arguments(parser)
    parser.add_argument("--images", type=int, default=60, help="real digits to transform")
    parser.add_argument("--optimise-steps", type=int, default=100)
    args = parser.parse_args()
    torch.manual_seed(args.seed)

    train_images, train_labels, held_images, held_labels = split_digits(args.seed)
    classifier = SVC(gamma="scale").fit(features(held_images), held_labels)
    classifier_accuracy = cross_val_score(SVC(gamma="scale"), features(held_images), held_labels, cv=5).mean()
    models = train_models(args, train_images, train_labels)

    labels = torch.arange(10).repeat(20)
    samples = generate(models[0], latents_for_seeds(range(10_000, 10_200), 100), labels)
    sample_accuracy = float((classifier.predict(features(samples)) == labels.numpy()).mean())

    picks = np.random.default_rng(args.seed).choice(len(train_images), args.images, replace=False)
    print(
        f"digits at 32 px; GAN {args.train_steps} steps (base_channels {args.base_channels}), encoder "
        f"{args.encoder_steps} steps; {len(picks)} real digits of the training split, each sent to its 9 "
        "other labels"
    )
    print(
        f"classifier: an RBF SVM trained on the held-out 20 % ({len(held_images)} images), 5-fold accuracy "
        f"{classifier_accuracy:.3f}; it gives the GAN's own samples their label {sample_accuracy:.3f} of "
        "the time\n"
    )
    print("| inversion | target accuracy | source reconstruction MSE | source label kept | seconds |")
    print("|---|---:|---:|---:|---:|")
    for name, steps in (
        ("encoder alone", 0),
        (f"encoder + {args.optimise_steps} steps", args.optimise_steps),
    ):
        started = time.perf_counter()
        accuracy, mse, kept = transform_row(
            models, classifier, train_images[picks], train_labels[picks], steps
        )
        print(f"| {name} | {accuracy:.3f} | {mse:.4f} | {kept:.3f} | {time.perf_counter() - started:.0f} |")


if __name__ == "__main__":
    main()
