"""Turning an uploaded image archive (zip, tar, tar.gz) into a packed training set, and the built-in
digits set. numpy, Pillow and the standard library only (no torch): the API process imports this.

Archives are never extracted to disk: members are read into memory one at a time, each read bounded.
Decoded images go to a scratch file as they come and are packed from it (workers.shared.datasets.packed): neither the
archive nor the packed set is ever whole in memory, and the decoded size is capped (IngestLimits).
Every member's name, type and declared size is vetted (for a zip before anything is read, for a tar as
the stream reaches it) and one unsafe member rejects the whole upload.

Labels come from folders, from a labels.csv (a `label` column, or a numeric `age` column), or from
UTKFace-style file names (`{age}_{gender}_{race}_....jpg`). Ages are bucketed by increasing lower edges
(`age_bins`) into classes named "0-18", "19-29", ..., "60+", kept in age order.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import dataclasses
import functools
import io
import itertools
import math
import posixpath
import re
import stat
import tarfile
import tempfile
import unicodedata
import zipfile
import zlib
from collections import Counter
from collections.abc import Callable, Generator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from workers.shared.atomic import atomic_writer
from workers.shared.datasets.packed import ImageSpill, write_npy
from workers.shared.imaging import grid_png

LabelMode = Literal["none", "folders", "csv", "utkface"]
LABEL_MODES: tuple[str, ...] = ("none", "folders", "csv", "utkface")
AGE_LABEL_MODES: tuple[str, ...] = ("utkface", "csv")  # csv only when labels.csv has an age column

# The six Age-cGAN groups 0-18, 19-29, 30-39, 40-49, 50-59, 60+, as lower edges.
DEFAULT_AGE_BINS: tuple[int, ...] = (0, 19, 30, 40, 50, 60)
MAX_AGE_BINS = 20
MAX_AGE = 120  # older is taken for a typo and the file skipped

LABELS_CSV = "labels.csv"
IMAGES_FILE = "images.npy"
LABELS_FILE = "labels.npy"
SPILL_FILE = ".decoded.tmp"  # decoded images in archive order, while an ingest runs

# Pillow can open many more formats; the rest (EPS runs Ghostscript, PSD, FITS, ...) are attack
# surface that nobody needs for a training set.
_IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP", "PPM", "TGA", "ICO", "AVIF")
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz", ".zst", ".7z", ".rar")
# zip, empty zip, gzip, bzip2, xz, 7z, rar (tar is recognised by "ustar" at offset 257)
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"7z\xbc\xaf", b"Rar!")
_SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini"})
_DEEP_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I", "F"})
_WHITE = (255, 255, 255, 255)


@dataclass(frozen=True)
class IngestLimits:
    max_entries: int = 100_000  # members in the archive
    max_entry_bytes: int = 32 * 2**20  # uncompressed bytes of one member (declared AND actually read)
    max_total_bytes: int = 2 * 2**30  # uncompressed bytes of all members (declared AND actually read)
    max_pixels: int = 40_000_000  # width*height cap checked BEFORE decoding (decompression bomb)
    # images × image_size² × channels once decoded: checked from a zip's member count before anything is
    # decoded, and for every archive as images decode. Many tiny files can decode to far more than an
    # upload's size.
    max_decoded_bytes: int = 4 * 2**30


_DEFAULT_LIMITS = IngestLimits()


@dataclass(frozen=True)
class SkippedFile:
    path: str
    reason: str


@dataclass
class PackedDataset:
    images: np.ndarray  # (N, C, H, W) uint8, H = W = image_size
    labels: np.ndarray | None  # (N,) int64 indices into classes; None when unlabelled
    classes: list[str]  # sorted class names, age classes in age order ([] when unlabelled)
    skipped: list[SkippedFile]
    age_bins: list[int] | None = None  # the lower edges used when the classes are age groups


class DatasetError(ValueError):
    """The upload as a whole is unusable. `field` names the request field to blame ("file", "labels", ...)."""

    def __init__(self, field: str, reason: str, status: int = 400):
        super().__init__(reason)
        self.field = field
        self.reason = reason
        self.status = status


# --------------------------------------------------------------------------------------------------
# Reading archives safely


@dataclass(frozen=True)
class _Member:
    """A regular file in the archive that passed the safety checks. `open` is valid only while the
    archive iterator is positioned on it (tar archives are read as a stream)."""

    parts: tuple[str, ...]  # normalised path parts: no "", ".", ".."; NFC
    open: Callable[[], IO[bytes]]
    encrypted: bool = False

    @property
    def path(self) -> str:
        return "/".join(self.parts)


def _format_bytes(count: int) -> str:
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if count >= size and count % size == 0:
            return f"{count // size} {unit}"
    return f"{count} bytes"


class _ByteBudget:
    """Caps uncompressed bytes per member and in total, for declared sizes and for bytes actually read
    (a zip's declared sizes can lie); and decoded bytes, images of `image_shape` (C, S, S)."""

    def __init__(self, limits: IngestLimits, image_shape: tuple[int, int, int]):
        self.limits = limits
        self.image_shape = image_shape
        self.declared = 0
        self.read_bytes = 0
        self.images = 0

    def expect_images(self, count: int) -> None:
        """Before decoding: `count` members that may be images fit the decoded-bytes cap."""
        if count * math.prod(self.image_shape) > self.limits.max_decoded_bytes:
            raise self._decoded_too_big(count)

    def take_image(self) -> None:
        """One more member about to be decoded as an image."""
        self.images += 1
        self.expect_images(self.images)

    def _decoded_too_big(self, count: int) -> DatasetError:
        channels, size, _ = self.image_shape
        decoded = count * math.prod(self.image_shape)
        cap = _format_bytes(self.limits.max_decoded_bytes)
        return DatasetError(
            "file",
            f"{count} images at {size}×{size} px × {channels} channels would decode to {decoded:,} bytes, "
            f"over the limit of {cap} decoded",
            413,
        )

    def _entry_too_big(self, name: str) -> DatasetError:
        cap = _format_bytes(self.limits.max_entry_bytes)
        return DatasetError("file", f"member {name!r} is larger than {cap} uncompressed (zip bomb?)")

    def _total_too_big(self) -> DatasetError:
        cap = _format_bytes(self.limits.max_total_bytes)
        return DatasetError("file", f"the archive holds more than {cap} uncompressed (zip bomb?)")

    def declare(self, name: str, size: int) -> None:
        if size > self.limits.max_entry_bytes:
            raise self._entry_too_big(name)
        self.declared += size
        if self.declared > self.limits.max_total_bytes:
            raise self._total_too_big()

    def read(self, name: str, stream: IO[bytes]) -> bytes:
        data = stream.read(self.limits.max_entry_bytes + 1)
        if len(data) > self.limits.max_entry_bytes:
            raise self._entry_too_big(name)
        self.read_bytes += len(data)
        if self.read_bytes > self.limits.max_total_bytes:
            raise self._total_too_big()
        return data


def _safe_parts(name: str) -> tuple[str, ...]:
    unified = name.replace("\\", "/")
    if unified.startswith("/") or re.match(r"[A-Za-z]:", unified):
        raise DatasetError("file", f"member {name!r} has an absolute path")
    parts = [part for part in unified.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise DatasetError("file", f"member {name!r} escapes the archive folder")
    return tuple(unicodedata.normalize("NFC", part) for part in parts)


_KIND_REJECTIONS = {
    "symlink": "is a symbolic link",
    "hardlink": "is a hard link",
    "special": "is a device or other special file",
}


def _check_member(name: str, kind: str, size: int, budget: _ByteBudget) -> tuple[str, ...]:
    """Raise for anything unsafe; return the normalised path parts."""
    parts = _safe_parts(name)
    if kind in _KIND_REJECTIONS:
        raise DatasetError("file", f"member {name!r} {_KIND_REJECTIONS[kind]}")
    if kind == "file":
        budget.declare(name, size)
    return parts


def _too_many_entries(limits: IngestLimits) -> DatasetError:
    return DatasetError("file", f"the archive has more than {limits.max_entries} entries (zip bomb?)")


def _zip_kind(info: zipfile.ZipInfo) -> str:
    file_type = (info.external_attr >> 16) & 0o170000
    if info.is_dir() or file_type == stat.S_IFDIR:
        return "dir"
    if file_type == stat.S_IFLNK:
        return "symlink"
    if file_type in (0, stat.S_IFREG):
        return "file"
    return "special"


def _zip_members(path: Path, limits: IngestLimits, budget: _ByteBudget) -> Generator[_Member, None, None]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DatasetError("file", f"the zip archive is damaged: {_short(exc)}") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise _too_many_entries(limits)
        # The central directory is at hand: vet every member before reading any of them.
        checked = []
        for info in infos:
            kind = _zip_kind(info)
            checked.append((info, kind, _check_member(info.filename, kind, info.file_size, budget)))
        budget.expect_images(sum(kind == "file" and _may_be_image(parts) for _, kind, parts in checked))
        for info, kind, parts in checked:
            if kind == "file" and parts:
                opener = functools.partial(archive.open, info)
                yield _Member(parts, opener, encrypted=bool(info.flag_bits & 0x1))


def _tar_kind(member: tarfile.TarInfo) -> str:
    if member.isdir():
        return "dir"
    if member.issym():
        return "symlink"
    if member.islnk():
        return "hardlink"
    if member.isfile():
        return "file"
    return "special"


_TAR_ERRORS = (tarfile.TarError, OSError, EOFError, zlib.error)


def _open_tar(path: Path) -> tarfile.TarFile:
    # Stream mode: one pass through a compressed archive, no seeking back. Members are vetted as they
    # come; nothing is written anywhere, so rejecting late is still safe.
    try:
        return tarfile.open(path, mode="r|*")
    except _TAR_ERRORS as exc:
        raise DatasetError("file", f"the tar archive is damaged: {_short(exc)}") from exc


def _tar_members(path: Path, limits: IngestLimits, budget: _ByteBudget) -> Generator[_Member, None, None]:
    with _open_tar(path) as archive:
        entries = iter(archive)
        count = 0
        while True:
            try:
                member = next(entries, None)
            except _TAR_ERRORS as exc:
                raise DatasetError("file", f"the tar archive is damaged: {_short(exc)}") from exc
            if member is None:
                return
            count += 1
            if count > limits.max_entries:
                raise _too_many_entries(limits)
            kind = _tar_kind(member)
            parts = _check_member(member.name, kind, member.size, budget)
            if kind == "file" and parts:
                yield _Member(parts, functools.partial(archive.extractfile, member))  # type: ignore[arg-type]


def _archive_members(path: Path, limits: IngestLimits, budget: _ByteBudget) -> Generator[_Member, None, None]:
    # Tar first: zipfile.is_zipfile also says yes to a tar whose last member is a zip.
    try:
        is_tar = tarfile.is_tarfile(path)
    except _TAR_ERRORS as exc:  # a gzip stream that ends inside the first tar header
        raise DatasetError("file", f"the tar archive is damaged: {_short(exc)}") from exc
    if is_tar:
        return _tar_members(path, limits, budget)
    if zipfile.is_zipfile(path):
        return _zip_members(path, limits, budget)
    if path.open("rb").read(4) == b"PK\x03\x04":
        raise DatasetError("file", "the zip archive is damaged (its end record is missing)")
    raise DatasetError("file", "not a zip or tar archive", 415)


# --------------------------------------------------------------------------------------------------
# Decoding one image


def _short(exc: BaseException, width: int = 80) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text if len(text) <= width else text[: width - 1] + "…"


@functools.cache
def _open_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(name for name in _IMAGE_FORMATS if name in Image.OPEN)


def _flatten_alpha(picture: Image.Image) -> Image.Image:
    """Composite anything with transparency (alpha band, tRNS, transparent palette entry) over white."""
    rgba = picture.convert("RGBA")
    background = Image.new("RGBA", rgba.size, _WHITE)
    return Image.alpha_composite(background, rgba).convert("RGB")


def _centre_square(size: tuple[int, int]) -> tuple[int, int, int, int]:
    width, height = size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return left, top, left + side, top + side


def _resize_square(picture: Image.Image, image_size: int) -> Image.Image:
    box = _centre_square(picture.size)
    return picture.resize((image_size, image_size), Image.Resampling.LANCZOS, box=box, reducing_gap=3.0)


def _rescale_deep(values: np.ndarray, mode: str, low: float, high: float) -> np.ndarray:
    """16-bit, 32-bit integer and float pixels → 0..1. Integer data that fits 16 bits keeps its nominal
    range (a dark photo stays dark); floats in 0..1 are taken as they are; anything else is stretched
    from its own minimum to maximum."""
    if mode.startswith("I") and low >= 0 and high <= 65535:
        return values / 65535.0
    if mode == "F" and low >= 0 and high <= 1:
        return values
    if high > low:
        return (values - low) / (high - low)
    return np.zeros_like(values)


def _deep_to_array(picture: Image.Image, image_size: int, channels: int) -> np.ndarray:
    floats = picture.convert("F")
    low, high = floats.getextrema()
    small = np.asarray(_resize_square(floats, image_size), dtype=np.float64)
    unit = _rescale_deep(np.nan_to_num(small), picture.mode, float(low), float(high))
    grey = np.round(np.clip(unit, 0.0, 1.0) * 255.0).astype(np.uint8)
    return np.repeat(grey[None], channels, axis=0)


def _to_array(picture: Image.Image, image_size: int, channels: int) -> np.ndarray:
    if picture.mode in _DEEP_MODES:
        return _deep_to_array(picture, image_size, channels)
    if picture.has_transparency_data:
        picture = _flatten_alpha(picture)
    picture = picture.convert("L" if channels == 1 else "RGB")
    pixels = np.asarray(_resize_square(picture, image_size))
    return pixels[None] if pixels.ndim == 2 else pixels.transpose(2, 0, 1)


def _bomb_reason(exc: Exception) -> str:
    found = re.search(r"\((\d+) pixels\)", str(exc))
    return f"decompression bomb: {found.group(1)} pixels" if found else "decompression bomb"


def _decode(data: bytes, image_size: int, channels: int, max_pixels: int) -> np.ndarray | str:
    """(C, S, S) uint8 pixels, or the reason the bytes are not usable."""
    try:
        with Image.open(io.BytesIO(data), formats=_open_formats()) as picture:
            width, height = picture.size
            if width * height > max_pixels:
                return f"decompression bomb: {width}x{height} pixels"
            if width < 1 or height < 1:
                return "corrupt image: no pixels"
            if picture.format in ("JPEG", "MPO"):
                # Let libjpeg scale down by 1/2..1/8 while decoding; keeps ≥ 2× the target size.
                picture.draft(None, (2 * image_size, 2 * image_size))
            picture.load()  # first frame of an animation
            with contextlib.suppress(Exception):  # a malformed EXIF block should not cost the picture
                ImageOps.exif_transpose(picture, in_place=True)
            return np.ascontiguousarray(_to_array(picture, image_size, channels))
    except Image.DecompressionBombError as exc:
        return _bomb_reason(exc)
    except UnidentifiedImageError:
        return "not an image"
    except Exception as exc:  # Pillow plugins raise anything from OSError to SyntaxError on bad data
        return f"corrupt image: {_short(exc)}"


# --------------------------------------------------------------------------------------------------
# Labels


def _is_ignored(parts: tuple[str, ...]) -> bool:
    return (
        "__MACOSX" in parts
        or any(part.startswith(".") for part in parts)
        or parts[-1].lower() in _SYSTEM_FILES
    )


def _may_be_image(parts: tuple[str, ...]) -> bool:
    """Whether a file member is decoded as an image (if it turns out to be one)."""
    return (
        bool(parts)
        and not _is_ignored(parts)
        and parts[-1].lower() != LABELS_CSV
        and not _looks_like_archive(parts[-1])
    )


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
        raise DatasetError("labels", f"labels.csv is malformed: {_short(exc)}") from exc
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


def _sort_classes(names: set[str]) -> list[str]:
    if all(re.fullmatch(r"[+-]?\d+", name) for name in names):
        return sorted(names, key=lambda name: (int(name), name))
    return sorted(names)


# --------------------------------------------------------------------------------------------------
# Ages


def age_classes(edges: Sequence[int]) -> list[str]:
    """Class names for increasing lower edges, in age order: bin i covers [edge_i, edge_{i+1} - 1] and
    is named "{lo}-{hi}"; the last is "{lo}+". (0, 19, 60) → ["0-18", "19-59", "60+"]."""
    if not edges:
        return []
    return [f"{low}-{high - 1}" for low, high in itertools.pairwise(edges)] + [f"{edges[-1]}+"]


def age_bucket(age: int, edges: Sequence[int]) -> int | None:
    """Index of the bin that holds `age`; None below the first edge."""
    if not edges or age < edges[0]:
        return None
    return bisect.bisect_right(edges, age) - 1


def _age_bins_error(reason: str) -> DatasetError:
    return DatasetError("age_bins", reason, 422)


def check_age_bins(edges: Sequence[int]) -> tuple[int, ...]:
    """The edges as a tuple, or DatasetError (field age_bins, 422) saying what is wrong with them."""
    if isinstance(edges, (str, bytes)) or not isinstance(edges, Sequence):
        raise _age_bins_error(f"age_bins must be a list of whole numbers, got {edges!r}")
    if not edges:
        raise _age_bins_error("age_bins is empty: give increasing lower edges such as 0,19,30,40,50,60")
    if any(isinstance(edge, bool) or not isinstance(edge, int) for edge in edges):
        raise _age_bins_error(f"age_bins must be whole numbers, got {list(edges)!r}")
    if len(edges) > MAX_AGE_BINS:
        raise _age_bins_error(f"age_bins has {len(edges)} bins; at most {MAX_AGE_BINS} are allowed")
    if min(edges) < 0:
        raise _age_bins_error(f"age_bins cannot be negative (got {min(edges)})")
    if max(edges) > MAX_AGE:
        raise _age_bins_error(f"age_bins edge {max(edges)} is above the oldest accepted age ({MAX_AGE})")
    for low, high in itertools.pairwise(edges):
        if high <= low:
            raise _age_bins_error(f"age_bins must be strictly increasing ({high} follows {low})")
    return tuple(edges)


def parse_age_bins(text: str) -> tuple[int, ...]:
    """Comma-separated lower edges ("0,19,30,40,50,60") → checked tuple; DatasetError (age_bins, 422)."""
    if not text.strip():
        raise _age_bins_error("age_bins is empty: give increasing lower edges such as 0,19,30,40,50,60")
    items = [item.strip() for item in text.split(",")]
    bad = [item for item in items if not re.fullmatch(r"[+-]?\d{1,9}", item)]
    if bad:
        raise _age_bins_error(
            f"age_bins must be comma-separated whole numbers such as 0,19,30; {_clip(bad[0])!r} is not one"
        )
    return check_age_bins([int(item) for item in items])


def _clip(text: str, width: int = 20) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


_AGE_NUMBER = re.compile(r"[+-]?(\d+(\.\d*)?|\.\d+)")


def _age_label(text: str | None, edges: Sequence[int], missing: str) -> str | _NoLabel:
    """The age class for an age written as text (decimals are floored: 18.9 is 18), or why none."""
    text = (text or "").strip()
    if not text:
        return _NoLabel(missing)
    if not _AGE_NUMBER.fullmatch(text):
        return _NoLabel(f"age {_clip(text)!r} is not a number")
    value = float(text)
    if value < 0 or value > MAX_AGE:
        return _NoLabel(f"impossible age {_clip(text)}")
    age = math.floor(value)
    index = age_bucket(age, edges)
    if index is None:
        return _NoLabel(f"age {age} is below the first age bin ({edges[0]})")
    return age_classes(edges)[index]


def _utkface_age(name: str) -> str | None:
    """The age in a UTKFace file name `{age}_{gender}_{race}_{date}.jpg`: the integer before the first
    underscore; None when the name does not start like that."""
    head, underscore, _ = name.partition("_")
    return head if underscore and re.fullmatch(r"[+-]?\d+", head) else None


# --------------------------------------------------------------------------------------------------
# Ingestion


@dataclass
class _Decoded:
    parts: tuple[str, ...]
    row: int  # in the ImageSpill


@dataclass(frozen=True)
class _NoLabel:
    """A labelled set's image that got no class, and why (it is skipped)."""

    reason: str


@dataclass
class _Labelling:
    names: list[str | _NoLabel]  # one per decoded image
    class_order: list[str] | None = None  # None: sort the class names found
    age_bins: tuple[int, ...] | None = None


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
        raise _age_bins_error(
            f"age_bins only applies to labels=utkface or labels=csv with an age column, not labels={labels}"
        )
    return check_age_bins(age_bins)


def _looks_like_archive(name: str, data: bytes | None = None) -> bool:
    if data is None:
        return name.lower().endswith(_ARCHIVE_SUFFIXES)
    return data.startswith(_ARCHIVE_MAGIC) or data[257:262] == b"ustar"


def _read_member(member: _Member, budget: _ByteBudget) -> bytes | str:
    """The member's bytes, or why it cannot be read (budget overruns raise instead)."""
    if member.encrypted:
        return "encrypted"
    try:
        with member.open() as stream:
            return budget.read(member.path, stream)
    except DatasetError:
        raise
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, *_TAR_ERRORS) as exc:
        return f"unreadable archive member: {_short(exc)}"


def _no_usable_image(skipped: Sequence[SkippedFile]) -> DatasetError:
    if not skipped:
        return DatasetError("file", "no usable image in the archive")
    first = "; ".join(f"{item.path}: {item.reason}" for item in skipped[:3])
    more = "; …" if len(skipped) > 3 else ""
    return DatasetError("file", f"no usable image in the archive ({len(skipped)} skipped: {first}{more})")


def _or_no_label(name: str | None, reason: str) -> str | _NoLabel:
    return _NoLabel(reason) if name is None else name


def _age_labelling(names: list[str | _NoLabel], edges: tuple[int, ...]) -> _Labelling:
    return _Labelling(names, class_order=age_classes(edges), age_bins=edges)


def _assign_labels(
    decoded: list[_Decoded],
    mode: str,
    csv_files: list[tuple[tuple[str, ...], bytes]],
    age_bins: tuple[int, ...] | None,
) -> _Labelling:
    paths = [item.parts for item in decoded]
    edges = age_bins or DEFAULT_AGE_BINS
    if mode == "folders":
        return _Labelling([_or_no_label(name, "no label folder") for name in _folder_labels(paths)])
    if mode == "utkface":
        ages = [_utkface_age(parts[-1]) for parts in paths]
        return _age_labelling([_age_label(age, edges, "no age in file name") for age in ages], edges)
    csv_parts, data = _choose_labels_csv(csv_files, paths)
    column, rows = _parse_labels_csv(data, prefer_age=age_bins is not None)
    values = _csv_labels(paths, csv_parts, rows)
    if column == "label":
        if age_bins is not None:
            raise _age_bins_error(
                "age_bins only applies to labels=utkface or to a labels.csv with an age column; "
                "this labels.csv has filename,label"
            )
        return _Labelling([_or_no_label(value, "not in labels.csv") for value in values])
    names = [
        _NoLabel("not in labels.csv") if value is None else _age_label(value, edges, "no age in labels.csv")
        for value in values
    ]
    return _age_labelling(names, edges)


def ingest_archive(
    path: Path,
    *,
    image_size: int,
    channels: int,
    labels: LabelMode,
    limits: IngestLimits = _DEFAULT_LIMITS,
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
    `age_bins` (increasing lower edges; DEFAULT_AGE_BINS when None); images with a missing or
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
    budget = _ByteBudget(limits, shape)
    decoded: list[_Decoded] = []
    skipped: list[SkippedFile] = []
    csv_files: list[tuple[tuple[str, ...], bytes]] = []
    files = 0
    with (
        ImageSpill(directory / SPILL_FILE, shape) as spill,
        contextlib.closing(_archive_members(Path(path), limits, budget)) as members,
    ):
        for member in members:
            if _is_ignored(member.parts):
                continue
            files += 1
            if member.parts[-1].lower() == LABELS_CSV:
                if labels == "csv":
                    csv_files.append((member.parts, _read_labels_csv(member, budget)))
                continue
            if _may_be_image(member.parts):
                budget.take_image()
            outcome = _ingest_member(member, budget, image_size, channels, limits.max_pixels)
            if isinstance(outcome, str):
                skipped.append(SkippedFile(member.path, outcome))
            else:
                decoded.append(_Decoded(member.parts, spill.append(outcome)))
        if files == 0:
            raise DatasetError("file", "the archive is empty")
        if labels == "none" or not decoded:
            labelling = _Labelling([])
        else:
            labelling = _assign_labels(decoded, labels, csv_files, edges)
        return _pack(decoded, labelling, skipped, labelled=labels != "none", spill=spill, directory=directory)


def _read_labels_csv(member: _Member, budget: _ByteBudget) -> bytes:
    data = _read_member(member, budget)
    if isinstance(data, str):
        raise DatasetError("labels", f"{member.path} could not be read: {data}")
    return data


def _ingest_member(
    member: _Member, budget: _ByteBudget, image_size: int, channels: int, max_pixels: int
) -> np.ndarray | str:
    if _looks_like_archive(member.parts[-1]):
        return "nested archive"
    data = _read_member(member, budget)
    if isinstance(data, str):
        return data
    if _looks_like_archive(member.parts[-1], data):
        return "nested archive"
    return _decode(data, image_size, channels, max_pixels)


def _pack(
    decoded: list[_Decoded],
    labelling: _Labelling,
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
        if isinstance(name, _NoLabel):
            skipped.append(SkippedFile("/".join(item.parts), name.reason))
        else:
            kept.append((item, name))
    skipped.sort(key=lambda item: item.path.split("/"))
    if not kept:
        raise _no_usable_image(skipped)
    kept.sort(key=lambda pair: pair[0].parts)
    write_npy(directory / IMAGES_FILE, (len(kept), *spill.shape), spill.rows(item.row for item, _ in kept))
    if not labelled:
        _write_labels(None, directory)
        return PackedDataset(read_images(directory)[0], None, [], skipped)
    present = {name for _, name in kept}
    if labelling.class_order is None:
        classes = _sort_classes(present)
    else:
        classes = [name for name in labelling.class_order if name in present]
    index_of = {name: index for index, name in enumerate(classes)}
    label_array = np.array([index_of[name] for _, name in kept], dtype=np.int64)
    _write_labels(label_array, directory)
    age_bins = list(labelling.age_bins) if labelling.age_bins is not None else None
    return PackedDataset(read_images(directory)[0], label_array, classes, skipped, age_bins)


# --------------------------------------------------------------------------------------------------
# Storage, the built-in set, previews


def _write_labels(labels: np.ndarray | None, directory: Path) -> None:
    """labels.npy, replaced atomically; removed for an unlabelled set."""
    if labels is None:
        (directory / LABELS_FILE).unlink(missing_ok=True)  # a stale one would pair with the wrong images
        return
    with atomic_writer(directory / LABELS_FILE) as handle:
        np.save(handle, np.asarray(labels, dtype=np.int64), allow_pickle=False)


def write_packed(dataset: PackedDataset, directory: Path) -> None:
    """images.npy and, when labelled, labels.npy; each replaced atomically."""
    images, labels = dataset.images, dataset.labels
    if images.ndim != 4 or images.dtype != np.uint8:
        raise ValueError(f"expected (N, C, H, W) uint8 images, got {images.shape} {images.dtype}")
    if labels is not None and np.shape(labels) != (len(images),):
        raise ValueError(f"{np.shape(labels)} labels for {len(images)} images")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    write_npy(directory / IMAGES_FILE, images.shape, images)
    _write_labels(labels, directory)


def read_images(directory: Path) -> tuple[np.ndarray, np.ndarray | None]:
    """Images memory-mapped read-only; labels loaded, or None for an unlabelled set."""
    directory = Path(directory)
    images = np.load(directory / IMAGES_FILE, mmap_mode="r", allow_pickle=False)
    labels_path = directory / LABELS_FILE
    labels = np.load(labels_path, allow_pickle=False) if labels_path.exists() else None
    if images.ndim != 4 or images.dtype != np.uint8:
        found = f"{images.shape} {images.dtype}"
        raise ValueError(f"{directory / IMAGES_FILE}: expected (N, C, H, W) uint8, got {found}")
    if labels is not None and labels.shape != (len(images),):
        raise ValueError(f"{labels_path}: {labels.shape} labels for {len(images)} images")
    return images, labels


def builtin_digits(image_size: int = 32) -> PackedDataset:
    """scikit-learn's 8×8 handwritten digits (bundled with the package, no download), upsampled."""
    from sklearn.datasets import load_digits  # slow import; only this function needs it

    digits = load_digits()
    small = np.round(digits.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)
    images = np.empty((len(small), 1, image_size, image_size), np.uint8)
    for index, pixels in enumerate(small):
        picture = Image.fromarray(pixels).resize((image_size, image_size), Image.Resampling.BICUBIC)
        images[index, 0] = np.asarray(picture)
    classes = [str(digit) for digit in range(10)]
    return PackedDataset(images, digits.target.astype(np.int64), classes, [])


def preview_png(images: np.ndarray, count: int = 64, seed: int = 0) -> bytes:
    """A grid of up to `count` examples picked by a seeded RNG (same seed, same picture)."""
    if len(images) == 0 or count < 1:
        raise ValueError("nothing to preview")
    chosen = np.random.default_rng(seed).choice(len(images), size=min(count, len(images)), replace=False)
    return grid_png(np.asarray(images[np.sort(chosen)]))


def decode_image(data: bytes, image_size: int, channels: int, max_pixels: int) -> np.ndarray:
    """One uploaded image, prepared exactly as dataset images are: (C, S, S) uint8. DatasetError on
    `image` when it is not a usable image."""
    decoded = _decode(data, image_size, channels, max_pixels)
    if isinstance(decoded, str):
        raise DatasetError("image", decoded, 422)
    return decoded
