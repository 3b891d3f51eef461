"""The built-in `digits` set: scikit-learn's labelled 8×8 handwritten digits (bundled with the package,
no download), upsampled."""

from __future__ import annotations

import numpy as np
from PIL import Image

from workers.shared.datasets.packed import PackedDataset


def builtin_digits(image_size: int = 32) -> PackedDataset:
    """scikit-learn's 8×8 handwritten digits (bundled with the package, no download), upsampled."""
    from sklearn.datasets import load_digits  # slow import; only this function needs it

    digits = load_digits()
    small = np.round(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    images = np.empty((len(small), 1, image_size, image_size), np.uint8)
    for index, pixels in enumerate(small):
        picture = Image.fromarray(pixels).resize((image_size, image_size), Image.Resampling.BICUBIC)
        images[index, 0] = np.asarray(picture)
    classes = [str(digit) for digit in range(10)]
    return PackedDataset(images, digits.target.astype(np.int64), classes, [])
