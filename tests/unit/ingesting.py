"""Archives built in tmp_path and ingested as an upload is, for the dataset ingestion tests."""

from __future__ import annotations

import io
import tarfile
import zipfile
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from workers.shared.datasets.archives import IngestLimits
from workers.shared.datasets.errors import DatasetError
from workers.shared.datasets.ingest import ingest_archive
from workers.shared.datasets.packed import PackedDataset

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


def encode(picture: Image.Image, image_format: str = "PNG", **options: object) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=image_format, **options)
    return buffer.getvalue()


def png(color: tuple[int, ...] = RED, size: tuple[int, int] = (20, 20), mode: str = "RGB") -> bytes:
    return encode(Image.new(mode, size, color))


def make_zip(tmp_path: Path, files: dict[str, bytes], name: str = "upload.zip") -> Path:
    target = tmp_path / name
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for member, data in files.items():
            archive.writestr(member, data)
    return target


def make_tar(tmp_path: Path, files: dict[str, bytes], mode: str = "w:gz", name: str = "upload.tgz") -> Path:
    target = tmp_path / name
    with tarfile.open(target, mode) as archive:
        for member, data in files.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return target


def make_archive(tmp_path: Path, kind: str, files: dict[str, bytes]) -> Path:
    if kind == "zip":
        return make_zip(tmp_path, files)
    return make_tar(tmp_path, files, mode={"tar": "w", "tar.gz": "w:gz"}[kind], name=f"upload.{kind}")


def ingest(
    path: Path,
    *,
    size: int = 8,
    channels: int = 3,
    labels: str = "none",
    age_bins: Sequence[int] | None = None,
    **limits: int,
) -> PackedDataset:
    return ingest_archive(
        path,
        image_size=size,
        channels=channels,
        labels=labels,  # type: ignore[arg-type]
        limits=IngestLimits(**limits),
        age_bins=age_bins,
    )


def single(
    tmp_path: Path, data: bytes, *, size: int = 8, channels: int = 3, name: str = "x.png"
) -> np.ndarray:
    """Ingest one member; return its (C, S, S) pixels."""
    dataset = ingest(make_zip(tmp_path, {name: data}), size=size, channels=channels)
    assert dataset.skipped == []
    assert dataset.images.shape == (1, channels, size, size)
    return dataset.images[0]


def reasons(dataset: PackedDataset) -> dict[str, str]:
    return {item.path: item.reason for item in dataset.skipped}


def rejected(path: Path, **kwargs: object) -> DatasetError:
    with pytest.raises(DatasetError) as caught:
        ingest(path, **kwargs)  # type: ignore[arg-type]
    return caught.value
