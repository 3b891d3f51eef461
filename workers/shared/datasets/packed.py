"""Packed image arrays written to disk as they come, never built in memory: an upload's images are
decoded one at a time into a scratch file, then copied in their final order into images.npy, so that
ingesting holds about one image in memory whatever the archive holds. numpy only (no torch)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType

import numpy as np

from workers.shared.atomic import atomic_writer


class ImageSpill:
    """uint8 images of one shape appended to a scratch file, then read back by index. The file is
    removed when the spill is closed (it is a context manager)."""

    def __init__(self, path: Path, shape: tuple[int, ...]):
        self.path = path
        self.shape = shape
        self.count = 0
        self._row_bytes = math.prod(shape)
        self._file = path.open("x+b")

    def append(self, image: np.ndarray) -> int:
        """Store `image`; its index."""
        if image.shape != self.shape or image.dtype != np.uint8:
            raise ValueError(f"expected {self.shape} uint8, got {image.shape} {image.dtype}")
        self._file.write(np.ascontiguousarray(image).data)
        self.count += 1
        return self.count - 1

    def rows(self, indices: Iterable[int]) -> Iterator[np.ndarray]:
        """The stored images at `indices`, one at a time, in that order."""
        self._file.flush()
        for index in indices:
            self._file.seek(index * self._row_bytes)
            yield np.frombuffer(self._file.read(self._row_bytes), np.uint8).reshape(self.shape)

    def __enter__(self) -> ImageSpill:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self._file.close()
        self.path.unlink(missing_ok=True)


def write_npy(target: Path, shape: tuple[int, ...], rows: Iterable[np.ndarray]) -> None:
    """`target`, atomically, as a .npy of uint8 of `shape` whose rows (`shape[1:]` each) are written one
    by one as `rows` yields them."""
    with atomic_writer(target) as handle:
        header = {"descr": np.dtype(np.uint8).str, "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(handle, header)
        written = 0
        for row in rows:
            if row.shape != shape[1:] or row.dtype != np.uint8:
                raise ValueError(f"expected rows of {shape[1:]} uint8, got {row.shape} {row.dtype}")
            handle.write(np.ascontiguousarray(row).data)
            written += 1
        if written != shape[0]:
            raise ValueError(f"{written} rows written where the header says {shape[0]}")
