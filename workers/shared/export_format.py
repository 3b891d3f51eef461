"""What an exported generator file is, and how it is checked before it is kept: torch- and pydantic-free,
so the API validates and documents it, and models.export (a library without pydantic) applies it."""

from __future__ import annotations

from typing import Literal

ExportFormat = Literal["onnx", "torchscript"]
SUFFIXES: dict[str, str] = {"onnx": ".onnx", "torchscript": ".pt"}

TOLERANCE = 1e-3
"""The largest difference allowed between the exported generator and PyTorch's on any output value, in
the output's units ([-1, 1]): an eighth of one step of an 8-bit image (2/255)."""
VERIFY_SEEDS = tuple(range(8))
"""The seeds both are run on, as one batch: conditional models take label i % (number of labels) for
seed i, so the first labels are all covered."""
