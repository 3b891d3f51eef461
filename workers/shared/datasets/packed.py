"""A packed data set: images.npy, (N, C, S, S) uint8, and labels.npy, (N,) int64 when labelled, read
back memory-mapped. Written to disk as they come, never built in memory: an upload's images are decoded
one at a time into a scratch file (ImageSpill), then copied in their final order into images.npy, so
that ingesting holds about one image in memory whatever the archive holds. numpy only (no torch)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

import numpy as np

from workers.shared.atomic import atomic_writer
from workers.shared.imaging import grid_png

IMAGES_FILE = "images.npy"
LABELS_FILE = "labels.npy"


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class PackedDataset:
    images: np.ndarray  # (N, C, H, W) uint8, H = W = image_size
    labels: np.ndarray | None  # (N,) int64 indices into classes; None when unlabelled
    classes: list[str]  # sorted class names, age classes in age order ([] when unlabelled)
    skipped: list[SkippedFile]
    age_bins: list[int] | None = None  # the lower edges used when the classes are age groups


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


def write_labels(labels: np.ndarray | None, directory: Path) -> None:
    """labels.npy, replaced atomically; removed for an unlabelled set."""
    if labels is None:
        (directory / LABELS_FILE).unlink(missing_ok=True)  # a stale one would pair with the wrong images
        return
    with atomic_writer(directory / LABELS_FILE) as handle:
        np.save(handle, np.asarray(labels, dtype=np.int64), allow_pickle=False)


def write_packed(dataset: PackedDataset, directory: Path) -> None:
    """images.npy and, when labelled, labels.npy; each replaced atomically."""
    images, labels = dataset.images, dataset.labels
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"expected (N, C, H, W) uint8 images, got {images.shape} {images.dtype}")
    if labels is not None and np.shape(labels) != (len(images),):
        raise ValueError(f"{np.shape(labels)} labels for {len(images)} images")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_npy(directory / IMAGES_FILE, images.shape, images)
    write_labels(labels, directory)


def read_images(directory: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Images memory-mapped read-only; labels loaded, or None for an unlabelled set."""
    directory = Path(directory)
    images = np.load(directory / IMAGES_FILE, mmap_mode="r", allow_pickle=False)
    labels_path = directory / LABELS_FILE
    labels = np.load(labels_path, allow_pickle=False) if labels_path.exists() else None
    if images.ndim != 4 or images.dtype != np.uint8:
        found = f"{images.shape} {images.dtype}"
        raise ValueError(f"{directory / IMAGES_FILE}: expected (N, C, H, W) uint8, got {found}")
    if labels is not None and labels.shape != (len(images),):
        raise ValueError(f"{labels_path}: {labels.shape} labels for {len(images)} images")
    return images, labels


def preview_png(images: np.ndarray, count: int = 64, seed: int = 0) -> bytes:
    """A grid of up to `count` examples picked by a seeded RNG (same seed, same picture)."""
    if len(images) == 0 or count < 1:
        raise ValueError("nothing to preview")
    chosen = np.random.default_rng(seed).choice(len(images), size=min(count, len(images)), replace=False)
    return grid_png(np.asarray(images[np.sort(chosen)]))
