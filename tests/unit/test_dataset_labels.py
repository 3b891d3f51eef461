"""Labels of an uploaded set (workers/shared/datasets/labels.py, ages.py): folders, labels.csv, UTKFace
file names and age groups. Archives are built in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.unit.ingesting import (
    BLUE,
    GREEN,
    RED,
    ingest,
    make_archive,
    make_tar,
    make_zip,
    png,
    reasons,
    rejected,
)
from workers.shared.datasets.ages import (
    DEFAULT_AGE_BINS,
    age_bucket,
    age_classes,
    check_age_bins,
    parse_age_bins,
)
from workers.shared.datasets.errors import DatasetError
from workers.shared.datasets.packed import (
    PackedDataset,
)

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
