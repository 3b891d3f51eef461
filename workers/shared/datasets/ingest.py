"""Turning an uploaded image archive (zip, tar, tar.gz) into a packed training set: its members read
safely (archives.py), each decoded (images.py) into a scratch file, labelled (labels.py), then packed
in path order (packed.py). A hostile or useless archive raises DatasetError; a member that is not a
usable image is skipped and reported. numpy, Pillow and the standard library only (no torch): the API
process runs this.
"""

from __future__ import annotations

import contextlib
import dataclasses
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workers.shared.datasets.ages import age_bins_error, check_age_bins
from workers.shared.datasets.archives import (
    DEFAULT_LIMITS,
    LABELS_CSV,
    ByteBudget,
    IngestLimits,
    Member,
    archive_members,
    is_ignored,
    looks_like_archive,
    may_be_image,
    read_member,
)
from workers.shared.datasets.errors import DatasetError
from workers.shared.datasets.images import decode
from workers.shared.datasets.labels import (
    AGE_LABEL_MODES,
    LABEL_MODES,
    Labelling,
    LabelMode,
    NoLabel,
    assign_labels,
    sort_classes,
)
from workers.shared.datasets.packed import (
    IMAGES_FILE,
    ImageSpill,
    PackedDataset,
    SkippedFile,
    read_images,
    write_labels,
    write_npy,
)

SPILL_FILE = ".decoded.tmp"  # decoded images in archive order, while an ingest runs


@dataclass
class _Decoded:
    parts: tuple[str, ...]
    row: int  # in the ImageSpill


def _check_options(
    image_size: int, channels: int, labels: str, age_bins: Sequence[int] | None
) -> tuple[int, ...] | None:
    if not isinstance(image_size, int) or image_size < 1:
        raise DatasetError("image_size", f"image_size must be a positive integer, got {image_size!r}")
    if channels not in (1, 3):
        raise DatasetError("channels", f"channels must be 1 or 3, got {channels!r}")
    if labels not in LABEL_MODES:
        raise DatasetError("labels", f"labels must be one of {', '.join(LABEL_MODES)}, got {labels!r}")
    if age_bins is None:
        return None
    if labels not in AGE_LABEL_MODES:
        raise age_bins_error(
            f"age_bins only applies to labels=utkface or labels=csv with an age column, not labels={labels}"
        )
    return check_age_bins(age_bins)


def _no_usable_image(skipped: Sequence[SkippedFile]) -> DatasetError:
    if not skipped:
        return DatasetError("file", "no usable image in the archive")
    first = "; ".join(f"{item.path}: {item.reason}" for item in skipped[:3])
    more = "; …" if len(skipped) > 3 else ""
    return DatasetError("file", f"no usable image in the archive ({len(skipped)} skipped: {first}{more})")


def ingest_archive(
    path: Path,
    *,
    image_size: int,
    channels: int,
    labels: LabelMode,
    limits: IngestLimits = DEFAULT_LIMITS,
    age_bins: Sequence[int] | None = None,
    directory: Path | None = None,
) -> PackedDataset:
    """Read every image in a zip / tar / tar.gz into (N, C, S, S) uint8, centre-cropped and resized,
    sorted by member path. Unusable members are reported in `skipped`; a hostile or useless archive
    raises DatasetError.

    The packed set is written to `directory` (images.npy, labels.npy) image by image, never built in
    memory, and the result's images memory-map it; without `directory` they are read into memory
    (small sets: tests and benches).

    labels="utkface" (ages from file names) and labels="csv" with an `age` column bucket ages by
    `age_bins` (increasing lower edges; ages.DEFAULT_AGE_BINS when None); images with a missing or
    impossible age are skipped. age_bins with any other labels is an error (field age_bins, 422)."""
    edges = _check_options(image_size, channels, labels, age_bins)
    if directory is None:
        with tempfile.TemporaryDirectory() as scratch:
            packed = ingest_archive(
                path,
                image_size=image_size,
                channels=channels,
                labels=labels,
                limits=limits,
                age_bins=age_bins,
                directory=Path(scratch),
            )
            return dataclasses.replace(packed, images=np.array(packed.images))
    shape = (channels, image_size, image_size)
    budget = ByteBudget(limits, shape)
    with (
        ImageSpill(directory / SPILL_FILE, shape) as spill,
        contextlib.closing(archive_members(Path(path), limits, budget)) as members,
    ):
        found = _read_members(members, budget, spill, read_csv=labels == "csv", max_pixels=limits.max_pixels)
        if found.files == 0:
            raise DatasetError("file", "the archive is empty")
        if labels == "none" or not found.decoded:
            labelling = Labelling([])
        else:
            paths = [item.parts for item in found.decoded]
            labelling = assign_labels(paths, labels, found.csv_files, edges)
        labelled = labels != "none"
        return _pack(
            found.decoded, labelling, found.skipped, labelled=labelled, spill=spill, directory=directory
        )


@dataclass
class _Found:
    """What an archive's members gave: images decoded into the spill, members skipped with their
    reasons, labels.csv files, and how many files were not ignored."""

    decoded: list[_Decoded] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    csv_files: list[tuple[tuple[str, ...], bytes]] = field(default_factory=list)
    files: int = 0


def _read_members(
    members: Iterable[Member], budget: ByteBudget, spill: ImageSpill, *, read_csv: bool, max_pixels: int
) -> _Found:
    """Decode each member into `spill` (images of the spill's shape) or skip it with its reason; keep
    the labels.csv files when `read_csv`."""
    channels, image_size, _ = spill.shape
    found = _Found()
    for member in members:
        if is_ignored(member.parts):
            continue
        found.files += 1
        if member.parts[-1].lower() == LABELS_CSV:
            if read_csv:
                found.csv_files.append((member.parts, _read_labels_csv(member, budget)))
            continue
        if may_be_image(member.parts):
            budget.take_image()
        outcome = _ingest_member(member, budget, image_size, channels, max_pixels)
        if isinstance(outcome, str):
            found.skipped.append(SkippedFile(member.path, outcome))
        else:
            found.decoded.append(_Decoded(member.parts, spill.append(outcome)))
    return found


def _read_labels_csv(member: Member, budget: ByteBudget) -> bytes:
    data = read_member(member, budget)
    if isinstance(data, str):
        raise DatasetError("labels", f"{member.path} could not be read: {data}")
    return data


def _ingest_member(
    member: Member, budget: ByteBudget, image_size: int, channels: int, max_pixels: int
) -> np.ndarray | str:
    if looks_like_archive(member.parts[-1]):
        return "nested archive"
    data = read_member(member, budget)
    if isinstance(data, str):
        return data
    if looks_like_archive(member.parts[-1], data):
        return "nested archive"
    return decode(data, image_size, channels, max_pixels)


def _pack(
    decoded: list[_Decoded],
    labelling: Labelling,
    skipped: list[SkippedFile],
    *,
    labelled: bool,
    spill: ImageSpill,
    directory: Path,
) -> PackedDataset:
    """Drop the images that got no label, sort by path and write them, with their labels, to
    `directory`. For an unlabelled set `labelling` is ignored. Classes keep `labelling.class_order`
    (age order) when given, else are sorted; either way only classes with at least one image are kept."""
    kept: list[tuple[_Decoded, str]] = []
    names = labelling.names if labelled else [""] * len(decoded)
    for item, name in zip(decoded, names, strict=True):
        if isinstance(name, NoLabel):
            skipped.append(SkippedFile("/".join(item.parts), name.reason))
        else:
            kept.append((item, name))
    skipped.sort(key=lambda item: item.path.split("/"))
    if not kept:
        raise _no_usable_image(skipped)
    kept.sort(key=lambda pair: pair[0].parts)
    write_npy(directory / IMAGES_FILE, (len(kept), *spill.shape), spill.rows(item.row for item, _ in kept))
    if not labelled:
        write_labels(None, directory)
        return PackedDataset(read_images(directory)[0], None, [], skipped)
    present = {name for _, name in kept}
    if labelling.class_order is None:
        classes = sort_classes(present)
    else:
        classes = [name for name in labelling.class_order if name in present]
    index_of = {name: index for index, name in enumerate(classes)}
    label_array = np.array([index_of[name] for _, name in kept], dtype=np.int64)
    write_labels(label_array, directory)
    age_bins = list(labelling.age_bins) if labelling.age_bins is not None else None
    return PackedDataset(read_images(directory)[0], label_array, classes, skipped, age_bins)
