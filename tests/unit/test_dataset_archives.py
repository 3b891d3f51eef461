"""Reading uploaded archives safely (workers/shared/datasets/archives.py): hostile and broken uploads
rejected, sizes and decoded bytes capped. Archives are built in tmp_path."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest

import workers.shared.datasets.ingest as ingest_module
from tests.unit.ingesting import (
    ingest,
    make_archive,
    make_tar,
    make_zip,
    png,
    rejected,
)
from workers.shared.datasets.archives import ByteBudget, IngestLimits
from workers.shared.datasets.errors import DatasetError

# --------------------------------------------------------------------------------------------------
# Hostile and broken uploads


def zip_with_member(tmp_path: Path, info: zipfile.ZipInfo, data: bytes = b"x") -> Path:
    target = tmp_path / "upload.zip"
    with zipfile.ZipFile(target, "w") as archive:
        archive.writestr("ok.png", png())
        archive.writestr(info, data)
    return target


@pytest.mark.parametrize("name", ["../evil.png", "x/../../etc/passwd", "a\\..\\..\\evil.png"])
def test_zip_member_escaping_the_folder(tmp_path: Path, name: str) -> None:
    error = rejected(zip_with_member(tmp_path, zipfile.ZipInfo(name), png()))
    assert (error.field, error.status) == ("file", 400)
    assert repr(name) in error.reason and "escapes" in error.reason


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_absolute_member_path(tmp_path: Path, kind: str) -> None:
    if kind == "zip":
        path = zip_with_member(tmp_path, zipfile.ZipInfo("/etc/evil.png"), png())
    else:
        path = make_tar(tmp_path, {"ok.png": png(), "/etc/evil.png": png()})
    error = rejected(path)
    assert error.status == 400 and "'/etc/evil.png'" in error.reason and "absolute" in error.reason


@pytest.mark.parametrize(
    ("link_type", "words"), [(tarfile.SYMTYPE, "symbolic link"), (tarfile.LNKTYPE, "hard link")]
)
def test_tar_links_are_rejected(tmp_path: Path, link_type: bytes, words: str) -> None:
    target = tmp_path / "upload.tar"
    with tarfile.open(target, "w") as archive:
        data = png()
        info = tarfile.TarInfo("a.png")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("link.png")
        link.type = link_type
        link.linkname = "/etc/passwd"
        archive.addfile(link)
    error = rejected(target)
    assert error.status == 400 and "'link.png'" in error.reason and words in error.reason


def test_tar_device_is_rejected(tmp_path: Path) -> None:
    target = tmp_path / "upload.tar"
    with tarfile.open(target, "w") as archive:
        device = tarfile.TarInfo("dev/zero")
        device.type = tarfile.CHRTYPE
        archive.addfile(device)
    assert "device" in rejected(target).reason


def test_zip_symlink_is_rejected(tmp_path: Path) -> None:
    info = zipfile.ZipInfo("link.png")
    info.create_system = 3
    info.external_attr = 0o120777 << 16
    error = rejected(zip_with_member(tmp_path, info, b"/etc/passwd"))
    assert "'link.png'" in error.reason and "symbolic link" in error.reason


def test_declared_member_size_over_the_cap(tmp_path: Path) -> None:
    path = make_zip(tmp_path, {"ok.png": png(), "big.png": png(size=(200, 200)) + b"\x00" * 5000})
    error = rejected(path, max_entry_bytes=4096)
    assert error.status == 400 and "'big.png'" in error.reason and "4 KiB" in error.reason


def test_declared_size_is_checked_before_reading(tmp_path: Path) -> None:
    path = make_zip(tmp_path, {"ok.png": png(), "liar.png": png()})
    data = bytearray(path.read_bytes())
    entry = data.rindex(b"PK\x01\x02")  # central directory record of the last member, liar.png
    data[entry + 24 : entry + 28] = struct.pack("<I", 3 * 2**20)  # declared uncompressed size: 3 MiB
    path.write_bytes(bytes(data))
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("liar.png").file_size == 3 * 2**20
    error = rejected(path, max_entry_bytes=2**20)
    assert "'liar.png'" in error.reason and "1 MiB" in error.reason


def test_total_size_over_the_cap(tmp_path: Path) -> None:
    files = {f"{index}.png": png() + b"\x00" * 600 for index in range(3)}
    error = rejected(make_tar(tmp_path, files), max_total_bytes=1500)
    assert error.status == 400 and "1500 bytes" in error.reason


def test_actual_reads_are_capped_even_when_sizes_lie() -> None:
    budget = ByteBudget(IngestLimits(max_entry_bytes=10, max_total_bytes=15), (1, 32, 32))
    budget.declare("small.png", 1)  # the header says one byte…
    with pytest.raises(DatasetError, match="larger than 10 bytes"):
        budget.read("small.png", io.BytesIO(b"x" * 1000))  # …the stream goes on
    budget = ByteBudget(IngestLimits(max_entry_bytes=10, max_total_bytes=15), (1, 32, 32))
    assert budget.read("a", io.BytesIO(b"x" * 10)) == b"x" * 10
    with pytest.raises(DatasetError, match="more than 15 bytes"):
        budget.read("b", io.BytesIO(b"x" * 10))


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_too_many_entries(tmp_path: Path, kind: str) -> None:
    files = {f"{index}.png": png() for index in range(5)}
    error = rejected(make_archive(tmp_path, kind, files), max_entries=3)
    assert error.status == 400 and "more than 3 entries" in error.reason


@pytest.mark.parametrize("content", [png(), b"just text", zlib.compress(b"x" * 100), b""])
def test_not_an_archive(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "upload.zip"
    path.write_bytes(content)
    error = rejected(path)
    assert (error.field, error.status) == ("file", 415)
    assert error.reason == "not a zip or tar archive"


def test_gzip_of_a_single_image_is_not_an_archive(tmp_path: Path) -> None:
    import gzip

    path = tmp_path / "upload.gz"
    path.write_bytes(gzip.compress(png()))
    assert rejected(path).status == 415


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_empty_archive(tmp_path: Path, kind: str) -> None:
    error = rejected(make_archive(tmp_path, kind, {}))
    assert (error.field, error.status) == ("file", 400)
    assert "empty" in error.reason


def test_damaged_tar_gz(tmp_path: Path) -> None:
    files = {f"{index}.png": np.random.default_rng(index).bytes(4000) for index in range(4)}
    path = make_tar(tmp_path, files)
    path.write_bytes(path.read_bytes()[:3000])
    error = rejected(path)
    assert error.status == 400 and error.field == "file"


def test_bad_options(tmp_path: Path) -> None:
    path = make_zip(tmp_path, {"a.png": png()})
    assert rejected(path, channels=2).field == "channels"
    assert rejected(path, labels="maybe").field == "labels"
    assert rejected(path, size=0).field == "image_size"


# --------------------------------------------------------------------------------------------------
# Decoded size


def counting_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each call of the image decoder, counted."""
    calls: list[int] = []
    decode = ingest_module.decode

    def counted(*arguments: object) -> object:
        calls.append(1)
        return decode(*arguments)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest_module, "decode", counted)
    return calls


def test_zip_over_the_decoded_budget_is_refused_before_decoding(tmp_path: Path, monkeypatch) -> None:
    calls = counting_decodes(monkeypatch)
    files = {f"{index}.png": png(size=(1, 1)) for index in range(30)}
    files |= {"labels.csv": b"filename,label\n", ".hidden.png": png(), "inner.zip": b"PK"}  # not counted
    error = rejected(make_zip(tmp_path, files), size=32, max_decoded_bytes=29 * 3 * 32 * 32)
    assert error.status == 413 and error.field == "file"
    assert "30 images at 32×32 px × 3 channels would decode to 92,160 bytes" in error.reason
    assert "over the limit of 87 KiB decoded" in error.reason
    assert calls == []
    assert len(ingest(make_zip(tmp_path, files), size=32, max_decoded_bytes=30 * 3 * 32 * 32).images) == 30


def test_tar_over_the_decoded_budget_stops_while_decoding(tmp_path: Path, monkeypatch) -> None:
    calls = counting_decodes(monkeypatch)
    files = {f"{index:02}.png": png(size=(1, 1)) for index in range(30)}
    error = rejected(make_tar(tmp_path, files), channels=1, size=16, max_decoded_bytes=10 * 16 * 16)
    assert error.status == 413 and "11 images at 16×16 px × 1 channels" in error.reason
    assert len(calls) == 10
