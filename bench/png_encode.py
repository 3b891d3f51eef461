"""PNG encoding: ganforge's encoder (workers.shared.imaging.png_bytes: Up filter + ISA-L deflate)
beside Pillow's at its fastest level, on the kinds of picture the service writes, measured in one run.

    python -m bench.png_encode [--repeats 300]

Rows: one 64 px image of an untrained DCGAN (what `generate` encodes per request), a smooth 64 px image
(gradient and noise), a 4×4 sample grid, and captioned strips (flat colours and text, like the
transform route's picture; images under 64 px are enlarged by repeating pixels, as
workers.shared.imaging.strip does).
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable

import numpy as np
import torch
from PIL import Image

from models.networks import Generator, NetworkSpec
from models.sampling import generate, latents_for_seeds
from workers.shared.imaging import png_bytes, strip, tile, to_pil


def pillow_png(image: np.ndarray | Image.Image) -> bytes:
    """Pillow at its fastest level, as workers.shared.imaging encoded before."""
    picture = image if isinstance(image, Image.Image) else to_pil(image)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG", compress_level=1)
    return buffer.getvalue()


def milliseconds(encode: Callable[[np.ndarray | Image.Image], bytes], image, repeats: int) -> float:
    encode(image)
    started = time.perf_counter()
    for _ in range(repeats):
        encode(image)
    return (time.perf_counter() - started) * 1000 / repeats


def pictures() -> dict[str, np.ndarray | Image.Image]:
    torch.manual_seed(0)
    generator = Generator(NetworkSpec(image_size=64, channels=3, latent_dim=100, base_channels=64)).eval()
    images = generate(generator, latents_for_seeds(range(16), 100))
    rng = np.random.default_rng(0)
    ramp = np.linspace(0, 200, 64)[None, :, None] + np.linspace(0, 50, 64)[:, None, None]
    smooth = np.clip(ramp + rng.normal(0, 4, (64, 64, 3)), 0, 255).astype(np.uint8)
    return {
        "64 px generated image (untrained DCGAN)": images[0],
        "64 px smooth image (gradient + noise)": smooth,
        "4×4 grid of 64 px images": tile(images, columns=4),
        "captioned strip of four 64 px images": strip(images[:4], ["input", "rebuilt", "a", "b"]),
        "captioned strip of four 32 px images (shown ×2)": strip(
            images[:4, :, ::2, ::2], ["input", "rebuilt", "a", "b"]
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeats", type=int, default=300)
    args = parser.parse_args()
    print("| picture | ganforge ms | Pillow level 1 ms | speed-up | ganforge bytes | Pillow bytes |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, image in pictures().items():
        ours, pillows = png_bytes(image), pillow_png(image)
        assert np.array_equal(
            np.asarray(Image.open(io.BytesIO(ours))), np.asarray(Image.open(io.BytesIO(pillows)))
        )
        ours_ms = milliseconds(png_bytes, image, args.repeats)
        pillow_ms = milliseconds(pillow_png, image, args.repeats)
        print(
            f"| {name} | {ours_ms:.3f} | {pillow_ms:.3f} | {pillow_ms / ours_ms:.1f}× | "
            f"{len(ours):,} | {len(pillows):,} |"
        )


if __name__ == "__main__":
    main()
