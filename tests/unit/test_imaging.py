"""workers.shared.imaging's PNG encoder: what it writes decodes, with Pillow, to exactly the pixels given."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from workers.shared.imaging import png_bytes

RNG = np.random.default_rng(0)


def decoded(png: bytes) -> Image.Image:
    picture = Image.open(io.BytesIO(png))
    picture.load()
    return picture


@pytest.mark.parametrize(
    ("pixels", "mode", "expected"),
    [
        (RNG.integers(0, 256, (3, 17, 9), np.uint8), "RGB", lambda p: p.transpose(1, 2, 0)),  # (C, H, W)
        (RNG.integers(0, 256, (1, 8, 5), np.uint8), "L", lambda p: p[0]),
        (RNG.integers(0, 256, (12, 7), np.uint8), "L", lambda p: p),  # (H, W)
        (RNG.integers(0, 256, (6, 11, 3), np.uint8), "RGB", lambda p: p),  # (H, W, C)
        (RNG.integers(0, 256, (5, 4, 4), np.uint8), "RGBA", lambda p: p),
    ],
)
def test_arrays_decode_to_the_same_pixels(pixels: np.ndarray, mode: str, expected) -> None:
    picture = decoded(png_bytes(pixels))
    assert picture.format == "PNG" and picture.mode == mode
    np.testing.assert_array_equal(np.asarray(picture), expected(pixels))


def test_pillow_images_decode_to_the_same_pixels() -> None:
    for mode in ("L", "RGB", "RGBA"):
        bands = len(mode)
        source = Image.fromarray(RNG.integers(0, 256, (10, 13, bands), np.uint8).squeeze(), mode)
        np.testing.assert_array_equal(np.asarray(decoded(png_bytes(source))), np.asarray(source))
    palette = Image.fromarray(RNG.integers(0, 4, (6, 6), np.uint8), "P")  # other modes become RGB
    np.testing.assert_array_equal(np.asarray(decoded(png_bytes(palette))), np.asarray(palette.convert("RGB")))


def test_smooth_images_compress() -> None:
    """The Up filter turns a vertical gradient into near-constant rows: far below the raw size."""
    gradient = np.repeat(np.linspace(0, 255, 64, dtype=np.uint8)[:, None, None], 64, axis=1).repeat(3, 2)
    png = png_bytes(gradient)
    np.testing.assert_array_equal(np.asarray(decoded(png)), gradient)
    assert len(png) < gradient.nbytes / 20
