"""Archive ingestion, packing and the built-in set (workers/shared/datasets/ingest.py). Archives are built in tmp_path."""

from __future__ import annotations

import io
import struct
import tarfile
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import workers.shared.datasets.ingest
from workers.shared.datasets.ingest import (
    DEFAULT_AGE_BINS,
    DatasetError,
    IngestLimits,
    PackedDataset,
    SkippedFile,
    _ByteBudget,
    age_bucket,
    age_classes,
    builtin_digits,
    check_age_bins,
    ingest_archive,
    parse_age_bins,
    preview_png,
    read_images,
    write_packed,
)
from workers.shared.datasets.packed import ImageSpill, write_npy

RED, GREEN, BLUE = (255, 0, 0), (0, 255, 0), (0, 0, 255)


# --------------------------------------------------------------------------------------------------
# Helpers


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


# --------------------------------------------------------------------------------------------------
# Formats and labels


@pytest.mark.parametrize("kind", ["zip", "tar", "tar.gz"])
def test_folder_labels_strip_the_common_top_folder(tmp_path: Path, kind: str) -> None:
    files = {
        "mydata/cats/1.png": png(RED),
        "mydata/cats/2.png": png(RED),
        "mydata/dogs/3.png": png(BLUE),
    }
    dataset = ingest(make_archive(tmp_path, kind, files), size=16, labels="folders")
    assert dataset.images.shape == (3, 3, 16, 16)
    assert dataset.images.dtype == np.uint8
    assert dataset.classes == ["cats", "dogs"]
    assert dataset.labels is not None and dataset.labels.dtype == np.int64
    assert dataset.labels.tolist() == [0, 0, 1]
    assert dataset.images[2, :, 8, 8].tolist() == list(BLUE)
    assert dataset.skipped == []


def test_folder_labels_without_top_folder(tmp_path: Path) -> None:
    files = {"dogs/b.png": png(BLUE), "cats/a.png": png(RED), "./cats/c.png": png(RED)}
    dataset = ingest(make_tar(tmp_path, files), labels="folders")
    assert dataset.classes == ["cats", "dogs"]
    assert dataset.labels is not None and dataset.labels.tolist() == [0, 0, 1]


def test_one_folder_is_one_class(tmp_path: Path) -> None:
    dataset = ingest(make_zip(tmp_path, {"top/cats/1.png": png(), "top/cats/2.png": png()}), labels="folders")
    assert dataset.classes == ["cats"]
    assert dataset.labels is not None and dataset.labels.tolist() == [0, 0]


def test_image_outside_any_class_folder_is_skipped(tmp_path: Path) -> None:
    files = {"d/loose.png": png(), "d/cats/1.png": png(), "d/dogs/2.png": png()}
    dataset = ingest(make_zip(tmp_path, files), labels="folders")
    assert dataset.classes == ["cats", "dogs"]
    assert len(dataset.images) == 2
    assert reasons(dataset) == {"d/loose.png": "no label folder"}


def test_numeric_class_names_sort_naturally(tmp_path: Path) -> None:
    files = {f"{digit}/a.png": png() for digit in ("10", "2", "1")}
    dataset = ingest(make_zip(tmp_path, files), labels="folders")
    assert dataset.classes == ["1", "2", "10"]


def test_images_are_sorted_by_path(tmp_path: Path) -> None:
    files = {"c.png": png(BLUE), "a.png": png(RED), "b.png": png(GREEN)}
    dataset = ingest(make_zip(tmp_path, files))
    assert [image[:, 4, 4].tolist() for image in dataset.images] == [list(RED), list(GREEN), list(BLUE)]
    assert dataset.labels is None
    assert dataset.classes == []


def test_csv_labels(tmp_path: Path) -> None:
    files = {
        "set/labels.csv": b"filename,label\nimg/a.png,cat\nimg/b.png,dog\n\nc.png,dog\n",
        "set/img/a.png": png(RED),
        "set/img/b.png": png(BLUE),
        "set/img/c.png": png(BLUE),  # matched by its unique file name
        "set/img/d.png": png(GREEN),  # no row
    }
    dataset = ingest(make_zip(tmp_path, files), labels="csv")
    assert dataset.classes == ["cat", "dog"]
    assert dataset.labels is not None and dataset.labels.tolist() == [0, 1, 1]
    assert reasons(dataset) == {"set/img/d.png": "not in labels.csv"}


def test_csv_with_bom_extra_columns_and_quotes(tmp_path: Path) -> None:
    csv_text = '\ufeffid,Label,Filename\n1,"big, red",a.png\n2,small,b.png\n'.encode()
    files = {"labels.csv": csv_text, "a.png": png(RED), "b.png": png(BLUE)}
    dataset = ingest(make_tar(tmp_path, files), labels="csv")
    assert dataset.classes == ["big, red", "small"]
    assert dataset.labels is not None and dataset.labels.tolist() == [0, 1]


def test_labels_csv_is_not_reported_when_unused(tmp_path: Path) -> None:
    dataset = ingest(make_zip(tmp_path, {"labels.csv": b"filename,label\n", "a.png": png()}))
    assert dataset.skipped == []
    assert len(dataset.images) == 1


def test_csv_mode_without_labels_csv(tmp_path: Path) -> None:
    error = rejected(make_zip(tmp_path, {"a.png": png()}), labels="csv")
    assert (error.field, error.status) == ("labels", 400)
    assert "labels.csv" in error.reason


def test_csv_without_the_right_columns(tmp_path: Path) -> None:
    files = {"labels.csv": b"file,class\na.png,cat\n", "a.png": png()}
    error = rejected(make_zip(tmp_path, files), labels="csv")
    assert error.field == "labels"
    assert "filename,label" in error.reason


def test_csv_with_conflicting_rows(tmp_path: Path) -> None:
    files = {"labels.csv": b"filename,label\na.png,cat\na.png,dog\n", "a.png": png()}
    assert rejected(make_zip(tmp_path, files), labels="csv").field == "labels"


# --------------------------------------------------------------------------------------------------
# Age labels: UTKFace file names and labels.csv with an age column


def shade(value: int) -> bytes:
    """A grey picture whose level identifies it after packing."""
    return png((value, value, value))


def levels(dataset: PackedDataset) -> list[int]:
    return [int(image[0, 4, 4]) for image in dataset.images]


def test_default_age_classes_are_the_six_age_cgan_groups() -> None:
    assert DEFAULT_AGE_BINS == (0, 19, 30, 40, 50, 60)
    assert age_classes(DEFAULT_AGE_BINS) == ["0-18", "19-29", "30-39", "40-49", "50-59", "60+"]
    assert age_classes([0, 30, 60]) == ["0-29", "30-59", "60+"]
    assert age_classes([21]) == ["21+"]
    assert age_classes([]) == []


@pytest.mark.parametrize(
    ("age", "expected"),
    [(0, 0), (18, 0), (19, 1), (29, 1), (30, 2), (49, 3), (59, 4), (60, 5), (99, 5), (120, 5)],
)
def test_age_bucket_at_the_edges(age: int, expected: int) -> None:
    assert age_bucket(age, DEFAULT_AGE_BINS) == expected


def test_age_bucket_below_the_first_edge_is_none() -> None:
    assert age_bucket(9, (10, 20)) is None
    assert age_bucket(10, (10, 20)) == 0
    assert age_bucket(19, (10, 20)) == 0
    assert age_bucket(20, (10, 20)) == 1
    assert age_bucket(5, ()) is None


def test_utkface_names_are_bucketed_at_the_edges(tmp_path: Path) -> None:
    files = {
        "UTKFace/99_1_0_20170120134639935.jpg.chip.jpg": shade(90),
        "UTKFace/18_0_2_20170116174525125.jpg.chip.jpg": shade(10),
        "UTKFace/19_1_3_20170104222336789.jpg.chip.jpg": shade(20),
        "UTKFace/60_0_1_20170110183726390.jpg.chip.jpg": shade(60),
        "UTKFace/25_0_2_20170116174525125.jpg.chip.jpg": shade(30),
    }
    dataset = ingest(make_zip(tmp_path, files), labels="utkface")
    assert dataset.skipped == []
    assert dataset.classes == ["0-18", "19-29", "60+"]  # empty groups are left out, order kept
    assert dataset.age_bins == [0, 19, 30, 40, 50, 60]
    # images sorted by path: 18, 19, 25, 60, 99
    assert levels(dataset) == [10, 20, 30, 60, 90]
    assert dataset.labels is not None and dataset.labels.tolist() == [0, 1, 1, 2, 2]


def test_age_classes_are_in_age_order_not_alphabetical(tmp_path: Path) -> None:
    files = {f"{age}_0_0_x.png": shade(age) for age in (3, 7, 12, 100)}
    dataset = ingest(make_zip(tmp_path, files), labels="utkface", age_bins=[0, 5, 10, 100])
    assert dataset.classes == ["0-4", "5-9", "10-99", "100+"]
    assert sorted(dataset.classes) != dataset.classes  # alphabetical order would differ
    by_level = dict(zip(levels(dataset), dataset.labels.tolist(), strict=True))  # type: ignore[union-attr]
    assert by_level == {3: 0, 7: 1, 12: 2, 100: 3}


def test_custom_bins(tmp_path: Path) -> None:
    files = {"29_0_0_a.png": shade(1), "30_0_0_b.png": shade(2), "61_1_2_c.png": shade(3)}
    dataset = ingest(make_zip(tmp_path, files), labels="utkface", age_bins=[0, 30, 60])
    assert dataset.classes == ["0-29", "30-59", "60+"]
    assert dataset.age_bins == [0, 30, 60]
    assert dataset.labels is not None and dataset.labels.tolist() == [0, 1, 2]


def test_bad_utkface_names_are_skipped_with_reasons(tmp_path: Path) -> None:
    files = {
        "faces/25_0_2_ok.jpg.chip.jpg": shade(25),
        "faces/portrait.png": shade(1),
        "faces/25.png": shade(2),  # no underscore after the age
        "faces/x_25_1_2.png": shade(3),
        "faces/150_0_0_old.png": shade(4),
        "faces/-3_0_0_neg.png": shade(5),
        "faces/5_0_0_young.png": shade(6),
        "faces/40_0_0_broken.png": b"not a picture",
    }
    dataset = ingest(make_zip(tmp_path, files), labels="utkface", age_bins=[10, 30])
    assert levels(dataset) == [25]
    assert dataset.classes == ["10-29"]
    assert reasons(dataset) == {
        "faces/portrait.png": "no age in file name",
        "faces/25.png": "no age in file name",
        "faces/x_25_1_2.png": "no age in file name",
        "faces/150_0_0_old.png": "impossible age 150",
        "faces/-3_0_0_neg.png": "impossible age -3",
        "faces/5_0_0_young.png": "age 5 is below the first age bin (10)",
        "faces/40_0_0_broken.png": "not an image",
    }


def test_no_usable_age_is_an_error(tmp_path: Path) -> None:
    error = rejected(make_zip(tmp_path, {"a.png": shade(1), "200_0_0_b.png": shade(2)}), labels="utkface")
    assert (error.field, error.status) == ("file", 400)
    assert "no usable image" in error.reason and "impossible age 200" in error.reason


def test_csv_with_an_age_column(tmp_path: Path) -> None:
    rows = [
        "filename,age",
        "a.png,18",
        "b.png,19",
        "c.png,60",
        "d.png,",
        "e.png,old",
        "f.png,150",
        "g.png,29.9",  # completed years: 29
        "h.png",  # a short row: no age
    ]
    files = {"labels.csv": "\n".join(rows).encode()}
    files |= {f"{name}.png": shade(level) for level, name in enumerate("abcdefghi", start=1)}
    dataset = ingest(make_zip(tmp_path, files), labels="csv")
    assert dataset.classes == ["0-18", "19-29", "60+"]
    assert dataset.age_bins == list(DEFAULT_AGE_BINS)
    assert levels(dataset) == [1, 2, 3, 7]
    assert dataset.labels is not None and dataset.labels.tolist() == [0, 1, 2, 1]
    assert reasons(dataset) == {
        "d.png": "no age in labels.csv",
        "e.png": "age 'old' is not a number",
        "f.png": "impossible age 150",
        "h.png": "no age in labels.csv",
        "i.png": "not in labels.csv",
    }


def test_csv_age_with_custom_bins(tmp_path: Path) -> None:
    files = {
        "labels.csv": b"filename,age\na.png,45\nb.png,12\n",
        "a.png": shade(1),
        "b.png": shade(2),
    }
    dataset = ingest(make_zip(tmp_path, files), labels="csv", age_bins=[0, 30, 60])
    assert dataset.classes == ["0-29", "30-59"]
    assert dataset.labels is not None and dataset.labels.tolist() == [1, 0]
    assert dataset.age_bins == [0, 30, 60]


def test_csv_with_label_and_age_columns_uses_labels_unless_bins_are_given(tmp_path: Path) -> None:
    files = {
        "labels.csv": b"filename,label,age\na.png,cat,45\nb.png,dog,12\n",
        "a.png": shade(1),
        "b.png": shade(2),
    }
    by_label = ingest(make_zip(tmp_path, files), labels="csv")
    assert by_label.classes == ["cat", "dog"] and by_label.age_bins is None
    by_age = ingest(make_zip(tmp_path, files), labels="csv", age_bins=[0, 19, 30, 40])
    assert by_age.classes == ["0-18", "40+"]
    assert by_age.labels is not None and by_age.labels.tolist() == [1, 0]


def test_age_bins_with_a_label_only_csv_is_refused(tmp_path: Path) -> None:
    files = {"labels.csv": b"filename,label\na.png,cat\n", "a.png": shade(1)}
    error = rejected(make_zip(tmp_path, files), labels="csv", age_bins=[0, 30])
    assert (error.field, error.status) == ("age_bins", 422)
    assert "age column" in error.reason


def test_csv_giving_one_file_two_ages_is_refused(tmp_path: Path) -> None:
    files = {"labels.csv": b"filename,age\na.png,20\na.png,30\n", "a.png": shade(1)}
    error = rejected(make_zip(tmp_path, files), labels="csv")
    assert error.field == "labels" and "two ages" in error.reason


def test_labels_without_ages_keep_no_age_bins(tmp_path: Path) -> None:
    dataset = ingest(make_zip(tmp_path, {"cats/1.png": shade(1), "dogs/2.png": shade(2)}), labels="folders")
    assert dataset.age_bins is None and dataset.classes == ["cats", "dogs"]


@pytest.mark.parametrize("labels", ["none", "folders"])
def test_age_bins_with_other_labels_is_refused_before_reading(tmp_path: Path, labels: str) -> None:
    not_an_archive = tmp_path / "upload.zip"
    not_an_archive.write_bytes(b"plain text")  # would be a 415 "file" error if it were read
    error = rejected(not_an_archive, labels=labels, age_bins=[0, 30])
    assert (error.field, error.status) == ("age_bins", 422)
    assert f"labels={labels}" in error.reason


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (" ", "empty"),
        ("0,ten,30", "'ten' is not one"),
        ("0,1.5", "'1.5' is not one"),
        ("0,,30", "'' is not one"),
        ("0,30,30", "strictly increasing (30 follows 30)"),
        ("30,10", "strictly increasing (10 follows 30)"),
        ("-5,10", "negative"),
        ("0,130", "above the oldest"),
        (",".join(str(edge) for edge in range(0, 105, 5)), "21 bins; at most 20"),
    ],
)
def test_parse_age_bins_errors(text: str, words: str) -> None:
    with pytest.raises(DatasetError) as caught:
        parse_age_bins(text)
    assert (caught.value.field, caught.value.status) == ("age_bins", 422)
    assert words in caught.value.reason


def test_parse_age_bins() -> None:
    assert parse_age_bins("0,19,30,40,50,60") == DEFAULT_AGE_BINS
    assert parse_age_bins(" 0 , 30,60 ") == (0, 30, 60)
    assert parse_age_bins(",".join(str(edge) for edge in range(0, 100, 5))) == tuple(range(0, 100, 5))


@pytest.mark.parametrize(
    ("edges", "words"),
    [([], "empty"), ([0, 30.5], "whole numbers"), ([True, 5], "whole numbers"), ("0,30", "a list")],
)
def test_check_age_bins_errors(edges: object, words: str) -> None:
    with pytest.raises(DatasetError) as caught:
        check_age_bins(edges)  # type: ignore[arg-type]
    assert caught.value.field == "age_bins" and words in caught.value.reason


def test_ingest_checks_the_age_bins_it_is_given(tmp_path: Path) -> None:
    error = rejected(make_zip(tmp_path, {"20_0_0_a.png": shade(1)}), labels="utkface", age_bins=[30, 20])
    assert (error.field, error.status) == ("age_bins", 422)


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
    budget = _ByteBudget(IngestLimits(max_entry_bytes=10, max_total_bytes=15), (1, 32, 32))
    budget.declare("small.png", 1)  # the header says one byte…
    with pytest.raises(DatasetError, match="larger than 10 bytes"):
        budget.read("small.png", io.BytesIO(b"x" * 1000))  # …the stream goes on
    budget = _ByteBudget(IngestLimits(max_entry_bytes=10, max_total_bytes=15), (1, 32, 32))
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


# --------------------------------------------------------------------------------------------------
# Decoded size and packing on disk


def counting_decodes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Each call of the image decoder, counted."""
    calls: list[int] = []
    decode = workers.shared.datasets.ingest._decode

    def counted(*arguments: object) -> object:
        calls.append(1)
        return decode(*arguments)  # type: ignore[arg-type]

    monkeypatch.setattr(workers.shared.datasets.ingest, "_decode", counted)
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
