"""Hostile uploads against the real API: every attack gets a clear 4xx naming the field (or archive member)
and the reason, and leaves nothing half-written behind. Bad images inside an otherwise good archive are
skipped, each with its reason, and the good ones kept.

Real app, real Redis, no worker. Tests that need other limits build their own app with the settings
changed (`limited`).
"""

from __future__ import annotations

import io
import stat
import tarfile
import time
import zipfile

import anyio
import numpy as np
import pytest
from PIL import Image

from tests.api.hostile import (
    MiB,
    assert_rejected,
    dataset_ids,
    encode,
    jpeg,
    patch_central_entry,
    png_claiming,
    tar_entry,
    tar_with,
    upload,
    uploads_left,
    zip_info,
    zip_with,
)
from tests.archives import png, zip_bytes

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
