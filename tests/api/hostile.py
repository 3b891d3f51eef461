"""Helpers of the hostile-input tests (test_hostile_uploads.py, test_hostile_requests.py): requests,
the shape of their 4xx answers, what is on disk, and archives and images built to attack."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from workers.shared.storage import Storage

JSON = {"content-type": "application/json"}
MiB = 2**20


def upload(client: TestClient, data: bytes, filename: str = "set.zip", **form: str):
    return client.post("/v1/datasets", files={"file": (filename, data)}, data=form)


def errors(response) -> list[tuple[list[str], str]]:
    """(loc, message) for each error of a 4xx in FastAPI's shape."""
    detail = response.json()["detail"]
    if isinstance(detail, str):
        return [([], detail)]
    return [([str(part) for part in item["loc"]], item["msg"]) for item in detail]


def assert_rejected(response, status: int | tuple[int, ...], field: str, *words: str) -> str:
    """The answer is `status`, names `field`, and its message holds every one of `words`."""
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.text[:500])
    found = errors(response)
    messages = [message for loc, message in found if field in loc[1:]]  # loc[0]: body, path, header…
    assert messages, f"no error names {field!r}: {found}"
    for word in words:
        assert any(word in message for message in messages), f"{word!r} not in {messages}"
    return messages[0]


def on_disk(storage: Storage) -> dict[str, list[str]]:
    """Everything under datasets/ and uploads/: what a rejected upload must leave as it was."""
    listing = {}
    for folder in ("datasets", "uploads"):
        path = storage.root / folder
        listing[folder] = sorted(entry.name for entry in path.iterdir()) if path.is_dir() else []
    return listing


def uploads_left(storage: Storage) -> list[Path]:
    folder = storage.root / "uploads"
    return list(folder.iterdir()) if folder.is_dir() else []


def dataset_ids(client: TestClient) -> list[str]:
    return [d["id"] for d in client.get("/v1/datasets").json()["datasets"]]


def zip_with(
    members: list[tuple[str | zipfile.ZipInfo, bytes]], compression: int = zipfile.ZIP_STORED
) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression) as archive:
        for name, data in members:
            archive.writestr(name, data)
    return buffer.getvalue()


def zip_info(name: str, file_type: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (file_type | 0o777) << 16
    return info


def patch_central_entry(archive: bytes, name: str, offset: int, fmt: str, value: int) -> bytes:
    """Overwrite a field of `name`'s central directory record (what zipfile believes)."""
    position = 0
    while True:
        position = archive.index(b"PK\x01\x02", position)
        length = struct.unpack_from("<H", archive, position + 28)[0]
        if archive[position + 46 : position + 46 + length] == name.encode():
            break
        position += 4
    at = position + offset
    return archive[:at] + struct.pack(fmt, value) + archive[at + struct.calcsize(fmt) :]


def tar_with(entries: list[tuple[tarfile.TarInfo, bytes | None]], mode: str = "w:gz") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode=mode) as archive:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def tar_entry(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info


def encode(picture: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    picture.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A PNG whose header claims width×height, with one tiny IDAT: Pillow opens it without decoding."""

    def chunk(kind: bytes, payload: bytes) -> bytes:
        return (
            struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    idat = zlib.compress(b"\0" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def jpeg(seed: int = 0, size: int = 64) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (size, size, 3), dtype=np.uint8)
    return encode(Image.fromarray(pixels), "JPEG")
