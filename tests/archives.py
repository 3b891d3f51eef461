"""Small image archives made on the fly for tests."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image


def png(seed: int, size: int = 24, mode: str = "RGB") -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).convert(mode).save(buffer, format="PNG")
    return buffer.getvalue()


def zip_bytes(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return buffer.getvalue()


def labelled_zip(classes: tuple[str, ...] = ("cats", "dogs"), per_class: int = 6) -> bytes:
    return zip_bytes(
        {
            f"pets/{label}/{i}.png": png(i + 100 * c)
            for c, label in enumerate(classes)
            for i in range(per_class)
        }
    )
