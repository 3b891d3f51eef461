"""Decoding one uploaded image into (C, S, S) uint8 pixels: centre-cropped, resized, transparency over
white, 16-bit and float pixels rescaled, EXIF orientation applied, and only common formats opened."""

from __future__ import annotations

import contextlib
import functools
import io
import re

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from workers.shared.datasets.errors import DatasetError, short

# Pillow can open many more formats; the rest (EPS runs Ghostscript, PSD, FITS, ...) are attack
# surface that nobody needs for a training set.
_IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "TGA", "ICO", "AVIF")
_DEEP_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_WHITE = (255, 255, 255, 255)


@functools.cache
def _open_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(name for name in _IMAGE_FORMATS if name in Image.OPEN)


def _flatten_alpha(picture: Image.Image) -> Image.Image:
    """Composite anything with transparency (alpha band, tRNS, transparent palette entry) over white."""
    rgba = picture.convert("RGBA")
    background = Image.new("RGBA", rgba.size, _WHITE)
    return Image.alpha_composite(background, rgba).convert("RGB")


def _centre_square(size: tuple[int, int]) -> tuple[int, int, int, int]:
    width, height = size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def _resize_square(picture: Image.Image, image_size: int) -> Image.Image:
    box = _centre_square(picture.size)
    return picture.resize((image_size, image_size), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)


def _rescale_deep(values: np.ndarray, mode: str, low: float, high: float) -> np.ndarray:
    """16-bit, 32-bit integer and float pixels → 0..1. Integer data that fits 16 bits keeps its nominal
    range (a dark photo stays dark); floats in 0..1 are taken as they are; anything else is stretched
    from its own minimum to maximum."""
    if mode.startswith("I") and low >= 0 and high <= 65535:
        return values / 65535.0
    if mode == "F" and low >= 0 and high <= 1:
        return values
    if high > low:
        return (values - low) / (high - low)
    return np.zeros_like(values)


def _deep_to_array(picture: Image.Image, image_size: int, channels: int) -> np.ndarray:
    floats = picture.convert("F")
    low, high = floats.getextrema()
    small = np.asarray(_resize_square(floats, image_size), dtype=np.float64)
    unit = _rescale_deep(np.nan_to_num(small), picture.mode, float(low), float(high))
    grey = np.round(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.repeat(grey[None], channels, axis=0)


def _to_array(picture: Image.Image, image_size: int, channels: int) -> np.ndarray:
    if picture.mode in _DEEP_MODES:
        return _deep_to_array(picture, image_size, channels)
    if picture.has_transparency_data:
        picture = _flatten_alpha(picture)
    picture = picture.convert("L" if channels == 1 else "RGB")
    pixels = np.asarray(_resize_square(picture, image_size))
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _bomb_reason(exc: Exception) -> str:
    found = re.search(r"\((\d+) pixels\)", str(exc))
    return f"decompression bomb: {found.group(1)} pixels" if found else "decompression bomb"


def decode(data: bytes, image_size: int, channels: int, max_pixels: int) -> np.ndarray | str:
    """(C, S, S) uint8 pixels, or the reason the bytes are not usable."""
    try:
        with Image.open(io.BytesIO(data), formats=_open_formats()) as picture:
            width, height = picture.size
            if width * height > max_pixels:
                return f"decompression bomb: {width}x{height} pixels"
            if width < 1 or height < 1:
                return "corrupt image: no pixels"
            if picture.format in ("JPEG", "MPO"):
                # Let libjpeg scale down by 1/2..1/8 while decoding; keeps ≥ 2× the target size.
                picture.draft(None, (2 * image_size, 2 * image_size))
            picture.load()  # first frame of an animation
            with contextlib.suppress(Exception):  # a malformed EXIF block should not cost the picture
                ImageOps.exif_transpose(picture, in_place=True)
            return np.ascontiguousarray(_to_array(picture, image_size, channels))
    except Image.DecompressionBombError as exc:
        return _bomb_reason(exc)
    except UnidentifiedImageError:
        return "not an image"
    except Exception as exc:  # Pillow plugins raise anything from OSError to SyntaxError on bad data
        return f"corrupt image: {short(exc)}"


def decode_image(data: bytes, image_size: int, channels: int, max_pixels: int) -> np.ndarray:
    """One uploaded image, prepared exactly as dataset images are: (C, S, S) uint8. DatasetError on
    `image` when it is not a usable image."""
    decoded = decode(data, image_size, channels, max_pixels)
    if isinstance(decoded, str):
        raise DatasetError("image", decoded, 422)
    return decoded
