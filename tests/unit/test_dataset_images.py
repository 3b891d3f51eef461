"""Decoding uploaded images (workers/shared/datasets/images.py): pixels as training sees them, and the
members skipped with a reason. Archives are built in tmp_path."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from tests.unit.ingesting import (
    BLUE,
    GREEN,
    RED,
    encode,
    ingest,
    make_zip,
    png,
    reasons,
    rejected,
    single,
)
from workers.shared.datasets.packed import (
    SkippedFile,
)

# --------------------------------------------------------------------------------------------------
# Pixels


def test_channels_three_and_one(tmp_path: Path) -> None:
    assert single(tmp_path, png(RED), channels=3)[:, 3, 3].tolist() == [255, 0, 0]
    grey = single(tmp_path, png(RED), channels=1)
    assert grey.shape == (1, 8, 8)
    assert abs(int(grey[0, 3, 3]) - 76) <= 2  # ITU-R 601 luma of pure red


def test_grey_source_becomes_three_equal_channels(tmp_path: Path) -> None:
    pixels = single(tmp_path, png(90, mode="L"), channels=3)
    assert pixels[:, 4, 4].tolist() == [90, 90, 90]


def test_centre_crop_of_a_wide_image(tmp_path: Path) -> None:
    picture = Image.new("RGB", (60, 20), RED)
    picture.paste(BLUE, (20, 0, 40, 20))  # the middle square is blue; the sides are cropped away
    pixels = single(tmp_path, encode(picture), size=10)
    assert (pixels[2] > 240).all() and (pixels[0] < 15).all()


def test_palette_with_transparency_composites_over_white(tmp_path: Path) -> None:
    picture = Image.new("P", (20, 20), 0)
    picture.putpalette([0, 0, 0, 0, 0, 255] + [0] * 762)
    picture.paste(1, (10, 0, 20, 20))
    pixels = single(tmp_path, encode(picture, transparency=0), size=20)
    assert pixels[:, 10, 2].tolist() == [255, 255, 255]  # transparent black → white
    assert pixels[:, 10, 17].tolist() == [0, 0, 255]


def test_rgba_composites_over_white(tmp_path: Path) -> None:
    picture = Image.new("RGBA", (20, 20), (0, 0, 0, 0))
    picture.paste((0, 0, 255, 255), (10, 0, 20, 20))
    pixels = single(tmp_path, encode(picture), size=20)
    assert pixels[:, 10, 2].tolist() == [255, 255, 255]
    assert pixels[:, 10, 17].tolist() == [0, 0, 255]
    grey = single(tmp_path, encode(picture), size=20, channels=1)
    assert grey[0, 10, 2] == 255


def test_cmyk_jpeg(tmp_path: Path) -> None:
    data = encode(Image.new("CMYK", (24, 24), (0, 255, 255, 0)), "JPEG", quality=95)
    assert Image.open(io.BytesIO(data)).mode == "CMYK"
    red, green, blue = single(tmp_path, data, name="x.jpg")[:, 4, 4].tolist()
    assert red > 220 and green < 40 and blue < 40


def test_sixteen_bit_gradient_keeps_its_range(tmp_path: Path) -> None:
    gradient = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (64, 1))
    picture = Image.fromarray(gradient)
    assert picture.mode == "I;16"
    row = single(tmp_path, encode(picture), size=32, channels=1)[0, 16].astype(int)
    assert row[0] <= 10 and row[-1] >= 245
    assert (np.diff(row) >= 0).all()
    assert len(set(row.tolist())) > 20  # a gradient, not a clipped block of 255


def test_one_bit_image(tmp_path: Path) -> None:
    picture = Image.new("1", (20, 20), 0)
    picture.paste(1, (10, 0, 20, 20))
    pixels = single(tmp_path, encode(picture), size=20, channels=1)
    assert pixels[0, 10, 2] == 0 and pixels[0, 10, 17] == 255


def test_animated_gif_uses_the_first_frame(tmp_path: Path) -> None:
    frames = [Image.new("RGB", (16, 16), RED), Image.new("RGB", (16, 16), GREEN)]
    data = encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)
    assert getattr(Image.open(io.BytesIO(data)), "n_frames", 1) == 2
    red, green, blue = single(tmp_path, data, name="x.gif")[:, 4, 4].tolist()
    assert red > 240 and green < 15 and blue < 15


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    picture = Image.new("L", (40, 20), 0)
    picture.paste(255, (20, 0, 40, 20))  # stored: left black, right white
    exif = Image.Exif()
    exif[0x0112] = 6  # display rotated 90° clockwise: left → top, right → bottom
    data = encode(picture.convert("RGB"), "JPEG", quality=95, exif=exif.tobytes())
    pixels = single(tmp_path, data, size=16, channels=1, name="x.jpg")[0].astype(int)
    assert pixels[:4].mean() < 30 and pixels[-4:].mean() > 225
    assert abs(pixels[:, :4].mean() - pixels[:, -4:].mean()) < 30  # no left/right split any more


def test_big_jpeg_is_scaled_while_decoding(tmp_path: Path) -> None:
    picture = Image.new("RGB", (1600, 1200), BLUE)
    pixels = single(tmp_path, encode(picture, "JPEG", quality=90), size=16, name="big.jpg")
    red, green, blue = pixels[:, 8, 8].tolist()
    assert blue > 240 and red < 15 and green < 15


# --------------------------------------------------------------------------------------------------
# Skipped members


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header says width × height; decoding it would need gigabytes."""
    header = png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
    return (
        b"\x89PNG\r\n\x1a\n"
        + header
        + png_chunk(b"IDAT", zlib.compress(b"\x00" * 100))
        + png_chunk(b"IEND", b"")
    )


def test_corrupt_files_are_skipped_and_the_rest_kept(tmp_path: Path) -> None:
    truncated = png(RED, size=(64, 64))[:60]
    files = {"good.png": png(), "garbage.png": b"this is not a png", "cut.png": truncated, "notes.txt": b"hi"}
    dataset = ingest(make_zip(tmp_path, files))
    assert len(dataset.images) == 1
    found = reasons(dataset)
    assert set(found) == {"garbage.png", "cut.png", "notes.txt"}
    assert found["garbage.png"] == "not an image"
    assert found["cut.png"].startswith(("corrupt image", "not an image"))
    assert all(isinstance(item, SkippedFile) for item in dataset.skipped)


def test_decompression_bomb_by_pixel_limit(tmp_path: Path) -> None:
    files = {"big.png": png(size=(100, 100)), "small.png": png(size=(50, 50))}
    dataset = ingest(make_zip(tmp_path, files), max_pixels=5_000)
    assert len(dataset.images) == 1
    assert reasons(dataset) == {"big.png": "decompression bomb: 100x100 pixels"}


def test_decompression_bomb_header_is_not_decoded(tmp_path: Path) -> None:
    files = {"bomb.png": png_header_claiming(50_000, 50_000), "ok.png": png()}
    dataset = ingest(make_zip(tmp_path, files))
    assert len(dataset.images) == 1
    assert reasons(dataset)["bomb.png"].startswith("decompression bomb")


def test_nested_archives_are_skipped(tmp_path: Path) -> None:
    inner = io.BytesIO()
    with zipfile.ZipFile(inner, "w") as archive:
        archive.writestr("a.png", png())
    files = {"inner.zip": inner.getvalue(), "disguised.png": inner.getvalue(), "ok.png": png()}
    dataset = ingest(make_zip(tmp_path, files))
    assert len(dataset.images) == 1
    assert reasons(dataset) == {"inner.zip": "nested archive", "disguised.png": "nested archive"}


def test_system_entries_are_ignored_silently(tmp_path: Path) -> None:
    files = {
        "__MACOSX/cats/._1.png": b"\x00\x05\x16\x07 resource fork",
        "cats/.DS_Store": b"\x00\x00\x00\x01Bud1",
        ".hidden/x.png": png(),
        "cats/1.png": png(),
    }
    dataset = ingest(make_zip(tmp_path, files), labels="folders")
    assert dataset.skipped == []
    assert len(dataset.images) == 1
    assert dataset.classes == ["cats"]


def test_no_usable_image(tmp_path: Path) -> None:
    error = rejected(make_zip(tmp_path, {"a.txt": b"hello", "b.png": b"nope"}))
    assert (error.field, error.status) == ("file", 400)
    assert (
        "no usable image" in error.reason and "2 skipped" in error.reason and "not an image" in error.reason
    )
