"""Where an uploaded set's labels come from: folders, a labels.csv (a `label` column, or a numeric `age`
column), or UTKFace-style file names (`{age}_{gender}_{race}_....jpg`). Ages are bucketed into age
groups (ages.py). An image that gets no label is skipped, with the reason."""

from __future__ import annotations

import csv
import io
import math
import posixpath
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from workers.shared.datasets.ages import (
    DEFAULT_AGE_BINS,
    MAX_AGE,
    age_bins_error,
    age_bucket,
    age_classes,
    clip,
)
from workers.shared.datasets.errors import DatasetError, short

LabelMode = Literal["none", "folders", "csv", "utkface"]
LABEL_MODES: tuple[str, ...] = ("none", "folders", "csv", "utkface")
AGE_LABEL_MODES: tuple[str, ...] = ("utkface", "csv")  # csv only when labels.csv has an age column


@dataclass(frozen=True)
class NoLabel:
    """A labelled set's image that got no class, and why (it is skipped)."""

    reason: str


@dataclass
class Labelling:
    names: list[str | NoLabel]  # one per decoded image
    class_order: list[str] | None = None  # None: sort the class names found
    age_bins: tuple[int, ...] | None = None


def _common_folder(paths: Sequence[tuple[str, ...]]) -> tuple[str, ...]:
    prefix = paths[0][:-1]
    for parts in paths[1:]:
        folder = parts[:-1]
        shared = 0
        while shared < min(len(prefix), len(folder)) and prefix[shared] == folder[shared]:
            shared += 1
        prefix = prefix[:shared]
    return prefix


def _folder_labels(paths: Sequence[tuple[str, ...]]) -> list[str | None]:
    """Class = first folder below the folders that every image shares. When every image sits directly
    in the shared folder, that folder is the (single) class rather than nothing."""
    prefix = _common_folder(paths)
    if prefix and all(len(parts) == len(prefix) + 1 for parts in paths):
        prefix = prefix[:-1]
    return [parts[len(prefix)] if len(parts) >= len(prefix) + 2 else None for parts in paths]


def _choose_labels_csv(
    csv_files: Sequence[tuple[tuple[str, ...], bytes]], paths: Sequence[tuple[str, ...]]
) -> tuple[tuple[str, ...], bytes]:
    if not csv_files:
        raise DatasetError("labels", "labels.csv is missing: add one with the columns filename,label")
    if len(csv_files) == 1:
        return csv_files[0]
    # Several: take the deepest one whose folder holds every image (the top of the data).
    images_folder = _common_folder(paths)
    holding = [item for item in csv_files if images_folder[: len(item[0]) - 1] == item[0][:-1]]
    deepest = max((len(parts) for parts, _ in holding), default=0)
    chosen = [item for item in holding if len(item[0]) == deepest]
    if len(chosen) != 1:
        found = len(csv_files)
        raise DatasetError("labels", f"found {found} labels.csv files; keep one at the top of the archive")
    return chosen[0]


def _csv_path(text: str) -> str:
    return unicodedata.normalize("NFC", text.strip().replace("\\", "/")).lstrip("/")


def _parse_labels_csv(data: bytes, *, prefer_age: bool = False) -> tuple[str, dict[str, str]]:
    """("label", filename → label) from a csv with a `filename,label` header, or ("age", filename →
    age text) from `filename,age` (other columns ignored). With both columns the label column wins
    unless `prefer_age`. Age texts may be empty or odd: they are judged per image later."""
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"))))
    except UnicodeDecodeError as exc:
        raise DatasetError("labels", "labels.csv is not UTF-8 text") from exc
    except csv.Error as exc:
        raise DatasetError("labels", f"labels.csv is malformed: {short(exc)}") from exc
    if not rows:
        raise DatasetError("labels", "labels.csv is empty")
    columns = [cell.strip().lower() for cell in rows[0]]
    if "filename" not in columns or ("label" not in columns and "age" not in columns):
        raise DatasetError(
            "labels",
            "labels.csv needs a header row with the columns filename,label or filename,age "
            f"(found {rows[0]!r})",
        )
    column = "age" if "age" in columns and (prefer_age or "label" not in columns) else "label"
    name_at, value_at = columns.index("filename"), columns.index(column)
    values: dict[str, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) <= name_at or (column == "label" and len(row) <= value_at):
            raise DatasetError("labels", f"labels.csv line {line} has too few columns")
        name = _csv_path(row[name_at])
        value = row[value_at].strip() if value_at < len(row) else ""  # a short row: no age
        if not name or (column == "label" and not value):
            raise DatasetError("labels", f"labels.csv line {line} has an empty filename or {column}")
        if values.setdefault(name, value) != value:
            both = f"{values[name]!r} and {value!r}"
            raise DatasetError("labels", f"labels.csv gives {name!r} two {column}s: {both}")
    return column, values


def _csv_labels(
    paths: Sequence[tuple[str, ...]], csv_parts: tuple[str, ...], rows: dict[str, str]
) -> list[str | None]:
    """Match each image to a row: by path relative to the csv's folder, by path from the archive top,
    then by file name alone where that name is unique both in the csv and among the images."""
    folder = "/".join(csv_parts[:-1])
    by_path = {posixpath.normpath(posixpath.join(folder, name)): label for name, label in rows.items()}
    row_names = Counter(posixpath.basename(name) for name in rows)
    by_name = {posixpath.basename(name): label for name, label in rows.items()}
    image_names = Counter(parts[-1] for parts in paths)
    found: list[str | None] = []
    for parts in paths:
        path = "/".join(parts)
        label = by_path.get(path, rows.get(path))
        if label is None and row_names[parts[-1]] == 1 and image_names[parts[-1]] == 1:
            label = by_name[parts[-1]]
        found.append(label)
    return found


def sort_classes(names: set[str]) -> list[str]:
    if all(re.fullmatch(r"[+-]?\d+", name) for name in names):
        return sorted(names, key=lambda name: (int(name), name))
    return sorted(names)


_AGE_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def _age_label(text: str | None, edges: Sequence[int], missing: str) -> str | NoLabel:
    """The age class for an age written as text (decimals are floored: 18.9 is 18), or why none."""
    text = (text or "").strip()
    if not text:
        return NoLabel(missing)
    if not _AGE_NUMBER.fullmatch(text):
        return NoLabel(f"age {clip(text)!r} is not a number")
    value = float(text)
    if value < 0 or value > MAX_AGE:
        return NoLabel(f"impossible age {clip(text)}")
    age = math.floor(value)
    index = age_bucket(age, edges)
    if index is None:
        return NoLabel(f"age {age} is below the first age bin ({edges[0]})")
    return age_classes(edges)[index]


def _utkface_age(name: str) -> str | None:
    """The age in a UTKFace file name `{age}_{gender}_{race}_{date}.jpg`: the integer before the first
    underscore; None when the name does not start like that."""
    head, underscore, _ = name.partition("_")
    return head if underscore and re.fullmatch(r"[+-]?\d+", head) else None


def _or_no_label(name: str | None, reason: str) -> str | NoLabel:
    return NoLabel(reason) if name is None else name


def _age_labelling(names: list[str | NoLabel], edges: tuple[int, ...]) -> Labelling:
    return Labelling(names, class_order=age_classes(edges), age_bins=edges)


def assign_labels(
    paths: Sequence[tuple[str, ...]],
    mode: str,
    csv_files: Sequence[tuple[tuple[str, ...], bytes]],
    age_bins: tuple[int, ...] | None,
) -> Labelling:
    """One label (or NoLabel, with the reason) per image path, by `mode`: folders, utkface or csv."""
    edges = age_bins or DEFAULT_AGE_BINS
    if mode == "folders":
        return Labelling([_or_no_label(name, "no label folder") for name in _folder_labels(paths)])
    if mode == "utkface":
        ages = [_utkface_age(parts[-1]) for parts in paths]
        return _age_labelling([_age_label(age, edges, "no age in file name") for age in ages], edges)
    csv_parts, data = _choose_labels_csv(csv_files, paths)
    column, rows = _parse_labels_csv(data, prefer_age=age_bins is not None)
    values = _csv_labels(paths, csv_parts, rows)
    if column == "label":
        if age_bins is not None:
            raise age_bins_error(
                "age_bins only applies to labels=utkface or to a labels.csv with an age column; "
                "this labels.csv has filename,label"
            )
        return Labelling([_or_no_label(value, "not in labels.csv") for value in values])
    names = [
        NoLabel("not in labels.csv") if value is None else _age_label(value, edges, "no age in labels.csv")
        for value in values
    ]
    return _age_labelling(names, edges)
