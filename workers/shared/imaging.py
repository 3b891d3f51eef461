"""Pictures from uint8 arrays: grids, strips and PNG bytes. numpy, Pillow and python-isal only (no torch),
so the API process can use it too."""

from __future__ import annotations

import io
import math
import struct
import zlib

import numpy as np
from isal import isal_zlib
from PIL import Image, ImageDraw


def tile(images: np.ndarray, columns: int | None = None, padding: int = 2) -> np.ndarray:
    """Lay out `images` (N, C, H, W uint8, C = 1 or 3) as one picture, row by row.

    `columns` defaults to a square-ish grid. Returns (H', W') for one channel, (H', W', 3) for three.
    """
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected (N, C, H, W) with C in (1, 3), got {images.shape}")
    count, channels, height, width = images.shape
    columns = columns or math.ceil(math.sqrt(count))
    rows = math.ceil(count / columns)
    canvas = np.zeros(
        (channels, rows * (height + padding) + padding, columns * (width + padding) + padding), np.uint8
    )
    for index, image in enumerate(images):
        top = padding + (index // columns) * (height + padding)
        left = padding + (index % columns) * (width + padding)
        canvas[:, top : top + height, left : left + width] = image
    return canvas[0] if channels == 1 else canvas.transpose(1, 2, 0)


def to_pil(image: np.ndarray) -> Image.Image:
    """(C, H, W), (H, W) or (H, W, 3) uint8 → a Pillow image in mode L or RGB."""
    if image.ndim == 3 and image.shape[0] in (1, 3):
        image = image[0] if image.shape[0] == 1 else image.transpose(1, 2, 0)
    return Image.fromarray(np.ascontiguousarray(image))


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PNG_COLOUR_TYPES = {1: 0, 3: 2, 4: 6}  # channels → PNG colour type: grey, RGB, RGBA


def png_bytes(image: np.ndarray | Image.Image) -> bytes:
    """Encode as PNG: each row stored as its difference from the row above (PNG's "Up" filter), then
    deflated by ISA-L (python-isal) at its fastest level: several times faster than Pillow's encoder
    (most of whose time is its adaptive filter choice), at sizes within about a tenth of its fastest
    level's, either way (bench/png_encode.py prints both)."""
    pixels = _height_width_channels(image)
    height, width, channels = pixels.shape
    rows = pixels.reshape(height, width * channels)
    filtered = np.empty((height, 1 + width * channels), np.uint8)
    filtered[:, 0] = 2  # the filter type byte: Up
    filtered[0, 1:] = rows[0]
    np.subtract(rows[1:], rows[:-1], out=filtered[1:, 1:])  # uint8: wraps modulo 256, as PNG wants
    header = struct.pack(">IIBBBBB", width, height, 8, PNG_COLOUR_TYPES[channels], 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", isal_zlib.compress(filtered.tobytes(), 1))
        + _png_chunk(b"IEND", b"")
    )


def _height_width_channels(image: np.ndarray | Image.Image) -> np.ndarray:
    """(H, W, C) uint8 with C = 1, 3 or 4, from a Pillow image or a (C, H, W), (H, W) or (H, W, C) array."""
    if isinstance(image, Image.Image):
        image = np.asarray(image if image.mode in ("L", "RGB", "RGBA") else image.convert("RGB"))
    elif image.ndim == 3 and image.shape[0] in (1, 3):
        image = image.transpose(1, 2, 0)
    pixels = np.ascontiguousarray(image, np.uint8)
    return pixels[:, :, None] if pixels.ndim == 2 else pixels


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def grid_png(images: np.ndarray, columns: int | None = None) -> bytes:
    """One image as its own PNG; several as a grid."""
    if len(images) == 1:
        return png_bytes(images[0])
    return png_bytes(tile(images, columns))


def strip(images: np.ndarray, captions: list[str] | None = None, padding: int = 2) -> Image.Image:
    """The images side by side, each with its caption underneath when given. Images under 64 px are
    enlarged (nearest neighbour, a whole factor) so that a caption of about ten characters fits."""
    scale = math.ceil(64 / images.shape[-1])
    picture = to_pil(tile(images, columns=len(images), padding=padding)).convert("RGB")
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    if not captions:
        return picture
    cell = (images.shape[-1] + padding) * scale
    captioned = Image.new("RGB", (picture.width, picture.height + 14), "white")
    captioned.paste(picture, (0, 0))
    draw = ImageDraw.Draw(captioned)
    for index, caption in enumerate(captions):
        draw.text((padding * scale + index * cell, picture.height), caption[: cell // 6], fill="black")
    return captioned


def gif_bytes(images: np.ndarray, frame_ms: int = 100) -> bytes:
    """An animated GIF that loops forever, one frame per image."""
    frames = [to_pil(image).convert("RGB") for image in images]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], loop=0, duration=frame_ms)
    return buffer.getvalue()
