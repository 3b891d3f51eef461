"""Hostile input against the real API: every attack gets a clear 4xx naming the field (or archive member)
and the reason, and leaves nothing half-written behind. Bad images inside an otherwise good archive are
skipped, each with its reason, and the good ones kept.

Real app, real Redis, no worker. Tests that need other limits build their own app with the settings
changed (`limited`).
"""

from __future__ import annotations

import io
import json
import re
import shutil
import stat
import struct
import tarfile
import time
import zipfile
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from tests.api.conftest import LOOPBACK
from tests.archives import png, zip_bytes
from workers.shared.contract import QUEUES
from workers.shared.settings import get_settings
from workers.shared.storage import Storage

JSON = {"content-type": "application/json"}
MiB = 2**20

# --- helpers -------------------------------------------------------------------------------------------


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


@pytest.fixture
def unchanged(client: TestClient, storage: Storage) -> Iterator[Callable[[], None]]:
    """Call it after a rejected request: the dataset list and the files on disk are as they were."""
    before_ids, before_disk = dataset_ids(client), on_disk(storage)

    def check() -> None:
        assert dataset_ids(client) == before_ids
        after = on_disk(storage)
        assert after == before_disk, after
        assert not [name for name in after["datasets"] if name.startswith(".")]  # no .incoming-*
        assert after["uploads"] == []

    yield check


@pytest.fixture
def limited(service_env, redis, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., TestClient]]:
    """limited(GANFORGE_MAX_UPLOAD_BYTES="65536", ...) → a client of an app built with those settings."""
    from app.main import create_app

    clients: list[TestClient] = []

    def build(**env: str) -> TestClient:
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        client = TestClient(create_app(), base_url="http://127.0.0.1", client=LOOPBACK)
        client.__enter__()
        clients.append(client)
        return client

    yield build
    for client in clients:
        client.__exit__(None, None, None)


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


GOOD = ("good.png", png(1))


# --- archives: unsafe members reject the whole upload ---------------------------------------------------


@pytest.mark.parametrize(
    ("member", "reason"),
    [
        ("../evil.png", "escapes the archive folder"),
        ("pets/../../evil.png", "escapes the archive folder"),
        ("..\\evil.png", "escapes the archive folder"),
        ("/etc/evil.png", "absolute path"),
        ("C:/Windows/evil.png", "absolute path"),
        (zip_info("link.png", stat.S_IFLNK), "is a symbolic link"),
        (zip_info("fifo.png", stat.S_IFIFO), "special file"),
        (zip_info("disk.png", stat.S_IFBLK), "special file"),
    ],
    ids=["dotdot", "inner-dotdot", "backslash-dotdot", "absolute", "drive", "symlink", "fifo", "blockdev"],
)
def test_unsafe_zip_member_rejects_the_upload(client, unchanged, member, reason: str) -> None:
    name = member.filename if isinstance(member, zipfile.ZipInfo) else member
    response = upload(client, zip_with([GOOD, (member, b"/etc/passwd" if "link" in name else png(2))]))
    message = assert_rejected(response, 400, "file", reason)
    assert repr(name) in message  # the member is named, as it is in the archive
    unchanged()


@pytest.mark.parametrize("mode", ["w", "w:gz"], ids=["tar", "tar.gz"])
@pytest.mark.parametrize(
    ("entry", "reason"),
    [
        (tar_entry("../evil.png"), "escapes the archive folder"),
        (tar_entry("/etc/evil.png"), "absolute path"),
        (tar_entry("link.png", tarfile.SYMTYPE, "/etc/passwd"), "is a symbolic link"),
        (tar_entry("hard.png", tarfile.LNKTYPE, "/etc/passwd"), "is a hard link"),
        (tar_entry("tty.png", tarfile.CHRTYPE), "special file"),
        (tar_entry("pipe.png", tarfile.FIFOTYPE), "special file"),
    ],
    ids=["dotdot", "absolute", "symlink", "hardlink", "chardev", "fifo"],
)
def test_unsafe_tar_member_rejects_the_upload(client, unchanged, mode: str, entry, reason: str) -> None:
    regular = entry.type == tarfile.REGTYPE
    archive = tar_with([(tar_entry("good.png"), png(1)), (entry, png(2) if regular else None)], mode)
    message = assert_rejected(upload(client, archive, "set.tar"), 400, "file", reason)
    assert repr(entry.name) in message
    unchanged()


def test_zip_declaring_a_huge_member_is_rejected_before_reading(client, unchanged) -> None:
    archive = zip_with([GOOD, ("bomb.png", png(2))])
    lying = patch_central_entry(archive, "bomb.png", 24, "<I", 0xFFFFFFF0)  # uncompressed size: ~4 GiB
    assert_rejected(upload(client, lying), 400, "file", "'bomb.png'", "larger than 32 MiB", "zip bomb")
    unchanged()


def test_member_inflating_past_the_per_file_cap_is_rejected(client, unchanged) -> None:
    archive = zip_with([GOOD, ("zeros.png", bytes(32 * MiB + 1))], zipfile.ZIP_DEFLATED)
    assert len(archive) < 100_000  # 32 MiB of zeros deflate to ~32 KiB: the classic bomb shape
    assert_rejected(upload(client, archive), 400, "file", "'zeros.png'", "larger than 32 MiB")
    unchanged()


def test_member_lying_about_its_small_size_is_skipped(client) -> None:
    """A central directory that says 1000 bytes for a member that inflates to 1 MiB: the read stops at
    the declared size, the CRC fails, the member is skipped and the rest kept."""
    archive = zip_with([GOOD, ("liar.png", bytes(MiB))], zipfile.ZIP_DEFLATED)
    response = upload(client, patch_central_entry(archive, "liar.png", 24, "<I", 1000))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["count"] == 1
    assert [(s["path"], "unreadable archive member" in s["reason"]) for s in body["skipped"]] == [
        ("liar.png", True)
    ]


def test_total_uncompressed_size_is_capped_at_four_times_the_upload_limit(limited, storage) -> None:
    client = limited(GANFORGE_MAX_UPLOAD_BYTES="65536")  # total cap: 256 KiB
    before = dataset_ids(client)
    members = [GOOD] + [(f"zeros-{i}.png", bytes(100 * 1024)) for i in range(5)]
    archive = zip_with(members, zipfile.ZIP_DEFLATED)
    assert len(archive) < 65536
    assert_rejected(upload(client, archive), 400, "file", "more than 256 KiB uncompressed", "zip bomb")
    assert dataset_ids(client) == before and uploads_left(storage) == []


def test_archive_with_too_many_entries_is_rejected(client, unchanged) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for index in range(100_001):
            archive.writestr(str(index), b"")
    started = time.monotonic()
    response = upload(client, buffer.getvalue())
    assert_rejected(response, 400, "file", "more than 100000 entries")
    assert time.monotonic() - started < 20
    unchanged()


def test_nested_archives_are_skipped(client) -> None:
    inner_zip = zip_bytes({"x.png": png(2)})
    inner_tgz = tar_with([(tar_entry("x.png"), png(3))])
    members = [GOOD, ("inner.zip", inner_zip), ("inner.tar.gz", inner_tgz)]
    members += [("zip-named.png", inner_zip), ("tgz-named.jpg", inner_tgz)]  # found by their magic
    response = upload(client, zip_with(members))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["count"] == 1
    skipped = {item["path"]: item["reason"] for item in body["skipped"]}
    assert skipped == dict.fromkeys(
        ["inner.tar.gz", "inner.zip", "tgz-named.jpg", "zip-named.png"], "nested archive"
    )


def test_encrypted_member_is_skipped(client) -> None:
    archive = zip_with([GOOD, ("secret.png", png(2))])
    response = upload(client, patch_central_entry(archive, "secret.png", 8, "<H", 0x1))
    assert response.status_code == 201, response.text
    assert response.json()["skipped"] == [{"path": "secret.png", "reason": "encrypted"}]


@pytest.mark.parametrize("cut", ["half", "no-end-record"])
def test_truncated_zip_is_a_clear_4xx(client, unchanged, cut: str) -> None:
    archive = zip_with([GOOD, ("b.png", png(2)), ("c.png", png(3))])
    truncated = archive[: len(archive) // 2] if cut == "half" else archive[:-10]
    # Without its end record a zip is not recognisable as one: 415 "not a zip or tar archive".
    assert_rejected(upload(client, truncated), (400, 415), "file", "archive")
    unchanged()


def test_zip_with_corrupt_member_data_skips_that_member(client) -> None:
    archive = zip_with([GOOD, ("bad.png", bytes(MiB))], zipfile.ZIP_DEFLATED)
    start = archive.index(b"bad.png") + len("bad.png") + 20  # inside bad.png's compressed data
    corrupt = archive[:start] + b"\xff" * 50 + archive[start + 50 :]
    response = upload(client, corrupt)
    assert response.status_code == 201, response.text
    [skipped] = response.json()["skipped"]
    assert skipped["path"] == "bad.png" and "unreadable archive member" in skipped["reason"]


def _three_image_tgz() -> bytes:
    return tar_with([(tar_entry(f"{i}.png"), png(i, size=100)) for i in range(3)])


@pytest.mark.parametrize(
    "keep",
    [
        pytest.param(0.5, id="half"),
        pytest.param(0.9, id="most"),
        pytest.param(60, id="inside-first-header"),
        pytest.param(12, id="gzip-header-only"),
    ],
)
def test_truncated_tar_gz_is_a_clear_4xx(client, unchanged, keep: float) -> None:
    archive = _three_image_tgz()
    cut = int(len(archive) * keep) if keep < 1 else int(keep)
    response = upload(client, archive[:cut], "set.tar.gz")
    assert response.status_code < 500, response.text
    assert_rejected(response, (400, 415), "file", "archive")
    unchanged()


def test_malformed_labels_csv_is_400_naming_labels(client, unchanged) -> None:
    archive = zip_bytes({"a/1.png": png(1), "labels.csv": b"filename,label\n1.png," + b"x" * 200_000 + b"\n"})
    assert_rejected(upload(client, archive, labels="csv"), 400, "labels", "labels.csv is malformed")
    not_utf8 = zip_bytes({"a/1.png": png(1), "labels.csv": b"filename,label\n1.png,\xff\xfe\n"})
    assert_rejected(upload(client, not_utf8, labels="csv"), 400, "labels", "not UTF-8")
    unchanged()


# --- images: the bad ones are skipped with a reason, the good ones kept ------------------------------


def test_broken_and_bomb_images_are_skipped(limited, storage) -> None:
    client = limited(GANFORGE_MAX_IMAGE_PIXELS="10000")  # 100×100
    whole_png, whole_jpeg = png(5, size=64), jpeg(5)
    members = {
        "a-good.png": png(1, size=24),
        "truncated.png": whole_png[: len(whole_png) // 2],
        "truncated.jpg": whole_jpeg[: len(whole_jpeg) // 2],
        "random.jpg": np.random.default_rng(1).bytes(4000),
        "text.png": b"just some text, not a picture\n",
        "empty.png": b"",
        "big.png": png(3, size=200),  # 40000 pixels > 10000
        "claims-60000x60000.png": png_claiming(60000, 60000),
    }
    response = upload(client, zip_bytes(members))
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["count"] == 1
    skipped = {item["path"]: item["reason"] for item in body["skipped"]}
    assert set(skipped) == set(members) - {"a-good.png"}
    assert skipped["truncated.png"].startswith("corrupt image") and "truncated" in skipped["truncated.png"]
    assert skipped["truncated.jpg"].startswith("corrupt image") and "truncated" in skipped["truncated.jpg"]
    assert skipped["random.jpg"] == skipped["text.png"] == skipped["empty.png"] == "not an image"
    assert skipped["big.png"] == "decompression bomb: 200x200 pixels"
    assert skipped["claims-60000x60000.png"].startswith("decompression bomb")
    images = np.load(storage.dataset_dir(body["id"]) / "images.npy")
    assert images.shape == (1, 3, 64, 64)


def test_huge_png_header_is_a_bomb_under_the_default_limit(client) -> None:
    response = upload(client, zip_bytes({"ok.png": png(1), "huge.png": png_claiming(60000, 60000)}))
    assert response.status_code == 201, response.text
    [skipped] = response.json()["skipped"]
    assert skipped["path"] == "huge.png" and skipped["reason"].startswith("decompression bomb")


def test_unusual_but_valid_images_are_decoded(client, storage) -> None:
    deep = Image.fromarray((np.arange(64 * 64).reshape(64, 64) * 16).astype(np.uint16))
    assert deep.mode == "I;16"
    palette = Image.new("P", (32, 32), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(1, (0, 0, 16, 32))  # left half blue (index 1), right half index 0: transparent
    red, blue = Image.new("RGB", (32, 32), (255, 0, 0)), Image.new("RGB", (32, 32), (0, 0, 255))
    members = {
        "1-anim.gif": encode(red, "GIF", save_all=True, append_images=[blue], duration=50, loop=0),
        "2-cmyk.jpg": encode(Image.new("CMYK", (32, 32), (0, 255, 255, 0)), "JPEG", quality=95),
        "3-deep.png": encode(deep, "PNG"),
        "4-palette.png": encode(palette, "PNG", transparency=0),
        "5-rgba.png": encode(Image.new("RGBA", (32, 32), (0, 255, 0, 128)), "PNG"),
    }
    response = upload(client, zip_bytes(members), image_size="32", channels="3")
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["count"] == 5 and body["skipped"] == []
    anim, cmyk, grey, pal, rgba = np.load(storage.dataset_dir(body["id"]) / "images.npy").astype(int)

    def close(pixel, expected, tolerance=3) -> bool:
        return bool(np.all(np.abs(np.asarray(pixel) - np.asarray(expected)) <= tolerance))

    assert close(anim[:, 16, 16], (255, 0, 0))  # the first frame, not the second (blue)
    assert close(cmyk[:, 16, 16], (255, 0, 0), tolerance=12)
    assert (grey[0] == grey[1]).all() and (grey[1] == grey[2]).all() and grey.max() > grey.min()
    assert close(pal[:, 16, 3], (0, 0, 255)) and close(pal[:, 16, 28], (255, 255, 255))  # alpha → white
    assert close(rgba[:, 16, 16], (127, 255, 127), tolerance=2)  # half green over white


# --- JSON bodies ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_model_template(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    """One tiny trained model for the module (training it, even for a step, costs a second or more)."""
    from tests.api.conftest import make_model

    template = Storage(tmp_path_factory.mktemp("model-template"))
    manifest = make_model(template, [])
    return manifest.id, template.model_dir(manifest.id)


@pytest.fixture
def model_id(storage: Storage, tiny_model_template: tuple[str, Path]) -> str:
    """The template model, copied into this test's data folder."""
    identifier, folder = tiny_model_template
    shutil.copytree(folder, storage.model_dir(identifier))
    return identifier


@pytest.fixture
def generate_url(model_id: str) -> str:
    return f"/v1/models/{model_id}/generate"


def url_for(target: str, request: pytest.FixtureRequest) -> str:
    return "/v1/training-jobs" if target == "train" else request.getfixturevalue("generate_url")


def no_jobs_created(client: TestClient, redis) -> bool:
    """Nothing queued: no training job (the model fixtures' jobs are completed) and no RQ job."""
    queued = sum(redis.llen(f"rq:queue:{name}") for name in QUEUES)
    jobs = client.get("/v1/training-jobs").json()["training_jobs"]
    return queued == 0 and all(job["status"] == "completed" for job in jobs)


@pytest.mark.parametrize(
    ("target", "body", "field", "words"),
    [
        ("train", {"dataset_id": "digits", "steps": "ten"}, "steps", ["valid integer"]),
        ("train", {"dataset_id": "digits", "lr_g": "fast"}, "lr_g", ["valid number"]),
        ("train", {"dataset_id": "digits", "conditional": "maybe"}, "conditional", ["valid boolean"]),
        ("train", {"dataset_id": "digits", "betas": [0.5]}, "betas", ["Field required"]),
        ("train", {"dataset_id": 7}, "dataset_id", ["valid string"]),
        ("train", {"dataset_id": ["digits"]}, "dataset_id", ["valid string"]),
        ("train", {"dataset_id": "digits", "image_size": "32px"}, "image_size", []),
        ("generate", {"n": [1]}, "n", ["valid integer"]),
        ("generate", {"n": 2.5}, "n", ["integer"]),
        ("generate", {"seed": "seven"}, "seed", ["valid integer"]),
        ("generate", {"seeds": "1,2"}, "seeds", ["valid list"]),
        ("generate", {"truncation": "high"}, "truncation", ["valid number"]),
        ("generate", {"truncation": "1e309"}, "truncation", ["valid number"]),  # text is not a number
        ("generate", {"labels": "a"}, "labels", ["valid list"]),
        ("generate", {"format": {"png": True}}, "format", []),
    ],
)
def test_wrong_types_are_422_naming_the_field(
    client, redis, request, target: str, body: dict, field: str, words: list[str]
) -> None:
    response = client.post(url_for(target, request), json=body)
    assert_rejected(response, 422, field, *words)
    assert no_jobs_created(client, redis)


@pytest.mark.parametrize(
    ("target", "body", "field"),
    [
        ("train", {"dataset_id": "digits", "learning_rate": 0.1}, "learning_rate"),
        ("train", {"dataset_id": "digits", "__class__": "x"}, "__class__"),
        ("generate", {"n": 1, "temperature": 0.7}, "temperature"),
    ],
)
def test_unknown_fields_are_rejected_by_name(client, redis, request, target, body, field) -> None:
    response = client.post(url_for(target, request), json=body)
    assert_rejected(response, 422, field, "Extra inputs are not permitted")
    assert no_jobs_created(client, redis)


def test_huge_seed_array_is_422_and_fast(client, redis, generate_url) -> None:
    started = time.monotonic()
    response = client.post(generate_url, json={"seeds": list(range(100_000))})
    assert time.monotonic() - started < 5
    assert_rejected(response, 422, "seeds", "at most 256")
    assert no_jobs_created(client, redis)


@pytest.mark.parametrize(
    ("target", "raw", "field", "echo"),
    [
        ("train", b'{"dataset_id": "digits", "lr_g": NaN}', "lr_g", "NaN"),
        ("train", b'{"dataset_id": "digits", "lr_d": Infinity}', "lr_d", "Infinity"),
        ("train", b'{"dataset_id": "digits", "ema_decay": -Infinity}', "ema_decay", "-Infinity"),
        ("train", b'{"dataset_id": "digits", "steps": NaN}', "steps", "NaN"),
        ("train", b'{"dataset_id": "digits", "betas": [NaN, 0.9]}', "betas", "NaN"),
        ("train", b'{"dataset_id": "digits", "lr_g": 1e309}', "lr_g", "Infinity"),
        ("generate", b'{"truncation": NaN}', "truncation", "NaN"),
        ("generate", b'{"truncation": 1e309}', "truncation", "Infinity"),
        ("generate", b'{"seed": Infinity}', "seed", "Infinity"),
        ("generate", b'{"seeds": [1, NaN]}', "seeds", "NaN"),
    ],
)
def test_non_finite_numbers_are_422_not_500(client, redis, request, target, raw, field, echo) -> None:
    """Python's json accepts NaN, Infinity and 1e309 (→ inf); JSON cannot carry them back in the error."""
    response = client.post(url_for(target, request), content=raw, headers=JSON)
    assert_rejected(response, 422, field)
    json.loads(response.text)  # strict JSON: no NaN literal in the answer
    assert [item["input"] for item in response.json()["detail"]] == [echo]
    assert no_jobs_created(client, redis)


@pytest.mark.parametrize(("depth", "status"), [(500, 422), (5_000, 400), (200_000, 400)])
def test_deeply_nested_json_is_4xx(client, redis, depth: int, status: int) -> None:
    raw = b'{"dataset_id": "digits", "name": ' + b"[" * depth + b"]" * depth + b"}"
    response = client.post("/v1/training-jobs", content=raw, headers=JSON)
    if status == 422:  # within the parser's depth: the field is named
        assert_rejected(response, 422, "name", "valid string")
    else:  # deeper than the parser goes
        assert response.status_code == 400 and "parsing the body" in response.json()["detail"]
    assert no_jobs_created(client, redis)


@pytest.mark.parametrize(
    "raw",
    [b'{"dataset_id": "digits", "name": "caf\xe9"}', b'{"dataset_id": "\xc0\xaf"}', b"\x00" * 10],
    ids=["latin1", "overlong-utf8", "nul"],
)
def test_non_utf8_or_garbage_body_is_4xx(client, redis, raw: bytes) -> None:
    response = client.post("/v1/training-jobs", content=raw, headers=JSON)
    assert response.status_code in (400, 422), response.text
    assert response.json()["detail"]
    assert no_jobs_created(client, redis)


def test_json_body_over_8_mib_is_413(client, redis) -> None:
    big = b'{"dataset_id": "digits", "name": "' + b"x" * (8 * MiB) + b'"}'
    response = client.post("/v1/training-jobs", content=big, headers=JSON)
    assert response.status_code == 413 and str(8 * MiB) in response.json()["detail"]
    chunks = (big[i : i + MiB] for i in range(0, len(big), MiB))  # no Content-Length: counted as it streams
    streamed = client.post("/v1/training-jobs", content=chunks, headers=JSON)
    assert streamed.status_code == 413 and str(8 * MiB) in streamed.json()["detail"]
    assert no_jobs_created(client, redis)


def test_empty_body_is_422(client, redis) -> None:
    response = client.post("/v1/training-jobs", content=b"", headers=JSON)
    assert response.status_code == 422
    assert (
        response.json()["detail"][0]["loc"] == ["body"] and "required" in response.json()["detail"][0]["msg"]
    )
    assert no_jobs_created(client, redis)


def test_text_plain_body_is_422_not_parsed_as_json(client, redis) -> None:
    response = client.post(
        "/v1/training-jobs", content=b'{"dataset_id": "digits"}', headers={"content-type": "text/plain"}
    )
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["loc"] == ["body"] and "dictionary" in error["msg"]
    assert no_jobs_created(client, redis)


# --- ids and names that try to be paths ------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/v1/datasets/..%2f..%2fetc"),
        ("get", "/v1/datasets/..%2f..%2fetc%2fpasswd/preview.png"),
        ("get", "/v1/models/%2e%2e"),
        ("get", "/v1/models/%2e%2e/checkpoints/1"),
        ("get", "/v1/models/..%5c..%5cetc"),
        ("get", "/v1/jobs/..%2f..%2f..%2fetc%2fpasswd"),
        ("get", "/v1/training-jobs/tj_..%2f..%2fetc"),
        ("get", "/v1/datasets/%2e%2e/preview.png"),
        ("get", "/v1/datasets/digits%00"),
        ("delete", "/v1/datasets/%2e%2e"),
        ("delete", "/v1/models/..%2fdatasets%2fdigits"),
    ],
)
def test_ids_trying_to_be_paths_are_404_or_422(client, unchanged, method: str, path: str) -> None:
    response = client.request(method, path)
    assert response.status_code in (404, 422), (path, response.status_code, response.text)
    assert "root:" not in response.text and response.headers["content-type"] == "application/json"
    if response.status_code == 422:
        [(loc, message)] = errors(response)
        assert loc[0] == "path" and loc[1].endswith("_id") and "pattern" in message
    unchanged()
    assert client.get("/v1/datasets/digits").status_code == 200


@pytest.mark.parametrize("dataset_id", ["../../etc/passwd", "digits/../../etc", "/etc", "digits\x00", ".."])
def test_path_as_dataset_id_in_a_training_spec_is_422(client, redis, dataset_id: str) -> None:
    response = client.post("/v1/training-jobs", json={"dataset_id": dataset_id})
    assert_rejected(response, 422, "dataset_id", "pattern")
    assert no_jobs_created(client, redis)


@pytest.mark.parametrize(
    ("name", "filename"),
    [("../../../escaped", "set.zip"), ("", "../../../escaped.zip"), ("..", "/etc/passwd")],
)
def test_upload_name_with_dotdot_is_only_a_display_name(client, storage, tmp_path, name, filename) -> None:
    before = sorted(p.name for p in tmp_path.iterdir())
    response = upload(client, zip_bytes({"a.png": png(1)}), filename, **({"name": name} if name else {}))
    assert response.status_code == 201, response.text
    body = response.json()
    assert re.fullmatch(r"ds_[0-9a-f]{12}", body["id"])  # generated, never from the name
    assert body["name"] == (name or filename)
    assert sorted(p.name for p in tmp_path.iterdir()) == before  # nothing next to the data folder
    assert sorted(p.name for p in storage.root.iterdir()) == ["datasets", "uploads"]
    assert sorted(p.name for p in (storage.root / "datasets").iterdir()) == sorted(["digits", body["id"]])
    assert uploads_left(storage) == []
    assert not list(Path("/").glob("escaped*")) and not list(tmp_path.parent.glob("escaped*"))


def test_oversized_idempotency_key_is_422(client, redis) -> None:
    response = client.post(
        "/v1/training-jobs", json={"dataset_id": "digits"}, headers={"Idempotency-Key": "k" * 10240}
    )
    assert_rejected(response, 422, "idempotency-key", "at most 200 characters")
    assert no_jobs_created(client, redis)
    odd = {"Idempotency-Key": "*?[]{}\\ :" * 20}  # Redis glob characters are just bytes in a key
    assert client.post("/v1/training-jobs", json={"dataset_id": "digits"}, headers=odd).status_code == 202


@pytest.mark.parametrize("path", ["checkpoints/{step}", "samples/{step}.png"])
@pytest.mark.parametrize(
    "step",
    [
        pytest.param("-1", id="negative"),
        pytest.param("9" * 240, id="240-digits"),
        pytest.param("9" * 300, id="300-digits"),
    ],
)
def test_absurd_step_in_a_model_file_path_is_4xx(client, model_id: str, path: str, step: str) -> None:
    assert client.get(f"/v1/models/{model_id}/" + path.format(step=1)).status_code == 200
    response = client.get(f"/v1/models/{model_id}/" + path.format(step=step))
    assert response.status_code in (404, 422), response.status_code


# --- the latent space: vectors, names and uploaded images -------------------------------------------


def test_non_finite_latent_vector_is_422(client, model_id: str) -> None:
    raw = b'{"name": "x", "latent": {"vector": [NaN, 1.0, Infinity]}}'
    response = client.post(f"/v1/models/{model_id}/latents", content=raw, headers=JSON)
    assert_rejected(response, 422, "vector")
    json.loads(response.text)
    assert client.get(f"/v1/models/{model_id}/latents").json()["latents"] == []


@pytest.mark.parametrize("name", ["../../manifest", "..", "a/b", "A", ""])
def test_latent_name_trying_to_be_a_path_is_422(client, model_id: str, name: str) -> None:
    response = client.post(f"/v1/models/{model_id}/latents", json={"name": name, "latent": {"seed": 1}})
    assert_rejected(response, 422, "name")
    assert client.get(f"/v1/models/{model_id}/latents/%2e%2e").status_code == 422
    assert client.delete(f"/v1/models/{model_id}/latents/..%2fmanifest").status_code == 404
    assert client.get(f"/v1/models/{model_id}").status_code == 200  # its manifest is still there


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (png_claiming(60000, 60000), "decompression bomb"),
        (b"just text", "not an image"),
        (png(1, size=64)[:100], "corrupt image"),
        (zip_bytes({"a.png": png(1)}), "not an image"),
    ],
    ids=["bomb", "text", "truncated", "zip"],
)
def test_hostile_image_to_invert_is_4xx_naming_image(
    client, redis, model_id: str, data: bytes, reason
) -> None:
    response = client.post(f"/v1/models/{model_id}/invert", files={"image": ("face.png", data)})
    assert_rejected(response, (400, 415, 422), "image", reason)
    assert sum(redis.llen(f"rq:queue:{name}") for name in QUEUES) == 0


# --- streams ----------------------------------------------------------------------------------------


def multipart(data: bytes, boundary: str = "hostile") -> tuple[bytes, str]:
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="set.zip"\r\n'
            "Content-Type: application/zip\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, f"multipart/form-data; boundary={boundary}"


def test_lying_small_content_length_is_still_counted(limited, storage) -> None:
    client = limited(GANFORGE_MAX_UPLOAD_BYTES="4096")
    body, content_type = multipart(zip_bytes({"a.png": png(1, size=64)}))
    assert len(body) > 4096
    response = client.post(
        "/v1/datasets", content=body, headers={"content-type": content_type, "content-length": "100"}
    )
    assert response.request.headers["content-length"] == "100"  # the lie reached the app
    assert response.status_code == 413 and "4096" in response.json()["detail"]
    assert uploads_left(storage) == []


def test_chunked_upload_over_the_limit_is_413_and_leaves_nothing(limited, storage) -> None:
    client = limited(GANFORGE_MAX_UPLOAD_BYTES="65536")
    before = dataset_ids(client)
    body, content_type = multipart(zip_bytes({f"{i}.png": png(i, size=64) for i in range(20)}))
    assert len(body) > 65536
    chunks = (body[i : i + 8192] for i in range(0, len(body), 8192))
    response = client.post("/v1/datasets", content=chunks, headers={"content-type": content_type})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413 and "65536" in response.json()["detail"]
    assert dataset_ids(client) == before and uploads_left(storage) == []


def test_mixed_case_multipart_gets_the_upload_limit(limited) -> None:
    """Starlette parses "Multipart/Form-Data" as a form, so the size limit must recognise it too."""
    client = limited(GANFORGE_MAX_UPLOAD_BYTES="4096")
    body, content_type = multipart(zip_bytes({"a.png": png(1, size=64)}))
    shouted = content_type.replace("multipart/form-data", "Multipart/Form-Data")
    response = client.post("/v1/datasets", content=body, headers={"content-type": shouted})
    assert response.status_code == 413 and "4096" in response.json()["detail"]
    small, _ = multipart(zip_bytes({"a.png": png(1, size=8)}))
    assert len(small) < 4096
    accepted = client.post("/v1/datasets", content=small, headers={"content-type": shouted})
    # python-multipart 0.0.33+ lowercases the type, so Starlette reads the form and the upload works;
    # older ones (all that Python 3.10 gets) keep the case, and Starlette reads no form: 422.
    from python_multipart.multipart import parse_options_header

    form = parse_options_header(shouted)[0] == b"multipart/form-data"
    assert accepted.status_code == (201 if form else 422), accepted.text


@pytest.mark.parametrize(
    ("content_type", "limit"), [("multipart/form-data; boundary=x", 65536), ("application/json", 8 * MiB)]
)
def test_endless_body_is_cut_off_while_streaming(limited, content_type: str, limit: int) -> None:
    """Straight at the ASGI app: a body that never ends is refused once past the limit, having been read
    no further than one chunk beyond it."""
    client = limited(GANFORGE_MAX_UPLOAD_BYTES="65536")
    app, chunk, pulled, sent = client.app, 16 * 1024, 0, []
    path = "/v1/datasets" if content_type.startswith("multipart") else "/v1/training-jobs"
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST", "scheme": "http",
        "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", content_type.encode())],
        "client": ("127.0.0.1", 5000), "server": ("127.0.0.1", 80), "state": {},
    }  # fmt: skip

    head = b'--x\r\nContent-Disposition: form-data; name="file"; filename="set.zip"\r\n\r\n'

    async def receive() -> dict:
        nonlocal pulled
        pulled += 1
        if pulled > 4 * limit // chunk:  # a safety stop, far past where the cut must come
            return {"type": "http.request", "body": b"", "more_body": False}
        body = head + b"a" * (chunk - len(head)) if pulled == 1 and path == "/v1/datasets" else b"a" * chunk
        return {"type": "http.request", "body": body, "more_body": True}

    async def send(message: dict) -> None:
        sent.append(message)

    anyio.run(app, scope, receive, send)
    assert sent[0]["type"] == "http.response.start" and sent[0]["status"] == 413
    assert str(limit).encode() in sent[1]["body"]
    assert pulled * chunk <= limit + chunk
