"""Packed data sets on disk (workers/shared/datasets/packed.py), ingestion into a folder, the built-in
set and previews. Archives are built in tmp_path."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.unit.ingesting import (
    BLUE,
    GREEN,
    RED,
    ingest,
    make_zip,
    png,
)
from workers.shared.datasets.builtin import builtin_digits
from workers.shared.datasets.errors import DatasetError
from workers.shared.datasets.ingest import ingest_archive
from workers.shared.datasets.packed import (
    ImageSpill,
    PackedDataset,
    preview_png,
    read_images,
    write_npy,
    write_packed,
)

# --------------------------------------------------------------------------------------------------
# Packing, digits, previews


def test_write_and_read_round_trip(tmp_path: Path) -> None:
    images = np.random.default_rng(0).integers(0, 256, (5, 3, 8, 8), dtype=np.uint8)
    labels = np.array([0, 1, 1, 0, 2], dtype=np.int64)
    write_packed(PackedDataset(images, labels, ["a", "b", "c"], []), tmp_path / "set")
    loaded_images, loaded_labels = read_images(tmp_path / "set")
    assert isinstance(loaded_images, np.memmap)
    assert np.array_equal(loaded_images, images)
    assert loaded_labels is not None and loaded_labels.tolist() == labels.tolist()
    assert sorted(path.name for path in (tmp_path / "set").iterdir()) == ["images.npy", "labels.npy"]
    # Rewriting as unlabelled must not leave the old labels behind.
    write_packed(PackedDataset(images[:2], None, [], []), tmp_path / "set")
    loaded_images, loaded_labels = read_images(tmp_path / "set")
    assert loaded_images.shape == (2, 3, 8, 8) and loaded_labels is None


def test_ingested_archive_round_trip(tmp_path: Path) -> None:
    files = {"cats/1.png": png(RED), "dogs/2.png": png(BLUE)}
    dataset = ingest(make_zip(tmp_path, files), labels="folders")
    write_packed(dataset, tmp_path / "packed")
    images, labels = read_images(tmp_path / "packed")
    assert np.array_equal(images, dataset.images)
    assert labels is not None and labels.tolist() == [0, 1]


def test_builtin_digits() -> None:
    from sklearn.datasets import load_digits

    dataset = builtin_digits()
    assert dataset.images.shape == (1797, 1, 32, 32) and dataset.images.dtype == np.uint8
    assert dataset.classes == [str(digit) for digit in range(10)]
    assert dataset.labels is not None and dataset.labels.dtype == np.int64
    assert np.array_equal(dataset.labels, load_digits().target)
    assert dataset.images.max() >= 250 and dataset.images.min() == 0
    assert builtin_digits(16).images.shape == (1797, 1, 16, 16)


def test_preview_png(tmp_path: Path) -> None:
    images = np.random.default_rng(1).integers(0, 256, (10, 3, 8, 8), dtype=np.uint8)
    data = preview_png(images, count=4, seed=3)
    picture = Image.open(io.BytesIO(data))
    assert picture.format == "PNG"
    assert picture.size == (22, 22)  # 2 × 2 grid of 8 px with 2 px padding
    assert preview_png(images, count=4, seed=3) == data
    assert preview_png(images, count=4, seed=4) != data
    assert Image.open(io.BytesIO(preview_png(images[:1, :1]))).size == (8, 8)


def test_ingest_writes_the_packed_set_into_a_folder(tmp_path: Path) -> None:
    files = {"dogs/b.png": png(BLUE), "cats/a.png": png(RED), "cats/c.png": png(GREEN), "x.txt": b"no"}
    folder = tmp_path / "set"
    folder.mkdir()
    dataset = ingest_archive(
        make_zip(tmp_path, files), image_size=8, channels=3, labels="folders", directory=folder
    )
    assert isinstance(dataset.images, np.memmap)  # on disk, not built in memory
    assert sorted(path.name for path in folder.iterdir()) == ["images.npy", "labels.npy"]  # no scratch left
    in_memory = ingest(make_zip(tmp_path, files), labels="folders")
    assert not isinstance(in_memory.images, np.memmap)
    assert np.array_equal(dataset.images, in_memory.images)
    assert [image[:, 4, 4].tolist() for image in dataset.images] == [list(RED), list(GREEN), list(BLUE)]
    images, labels = read_images(folder)
    assert np.array_equal(images, in_memory.images) and labels is not None and labels.tolist() == [0, 0, 1]


def test_a_failed_ingest_leaves_no_scratch_file(tmp_path: Path) -> None:
    folder = tmp_path / "set"
    folder.mkdir()
    with pytest.raises(DatasetError):
        ingest_archive(
            make_zip(tmp_path, {"a.txt": b"not an image"}),
            image_size=8,
            channels=3,
            labels="none",
            directory=folder,
        )
    assert list(folder.iterdir()) == []


def test_image_spill_and_npy_rows(tmp_path: Path) -> None:
    rows = np.random.default_rng(0).integers(0, 256, (3, 2, 4, 4), dtype=np.uint8)
    with ImageSpill(tmp_path / "spill", (2, 4, 4)) as spill:
        assert [spill.append(row) for row in rows] == [0, 1, 2]
        with pytest.raises(ValueError, match="uint8"):
            spill.append(rows[0].astype(np.int16))
        write_npy(tmp_path / "images.npy", (3, 2, 4, 4), spill.rows([2, 0, 1]))
    assert not (tmp_path / "spill").exists()
    assert np.array_equal(np.load(tmp_path / "images.npy"), rows[[2, 0, 1]])
    with pytest.raises(ValueError, match="2 rows written where the header says 3"):
        write_npy(tmp_path / "short.npy", (3, 2, 4, 4), iter(rows[:2]))
    assert not (tmp_path / "short.npy").exists()
