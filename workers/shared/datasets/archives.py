"""Reading an uploaded zip, tar or tar.gz safely, member by member, without extracting anything to disk.

Every member's name, type and declared size is vetted (for a zip before anything is read, for a tar as
the stream reaches it) and one unsafe member rejects the whole upload. Each read is bounded, and so are
the bytes of all members together and the images they may decode to (IngestLimits).
"""

from __future__ import annotations

import functools
import math
import re
import stat
import tarfile
import unicodedata
import zipfile
import zlib
from collections.abc import Callable, Generator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from workers.shared.datasets.errors import DatasetError, short

LABELS_CSV = "labels.csv"
_ARCHIVE_SUFFIXES = (".zip", ".tar", ".gz", ".tgz", ".bz2", ".tbz2", ".xz", ".txz", ".zst", ".7z", ".rar")
# zip, empty zip, gzip, bzip2, xz, 7z, rar (tar is recognised by "ustar" at offset 257)
_ARCHIVE_MAGIC = (b"PK\x03\x04", b"PK\x05\x06", b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00", b"7z\xbc\xaf", b"Rar!")
_SYSTEM_FILES = frozenset({"thumbs.db", "desktop.ini"})


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


DEFAULT_LIMITS = IngestLimits()


@dataclass(frozen=True)
class Member:
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


class ByteBudget:
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


def _check_member(name: str, kind: str, size: int, budget: ByteBudget) -> tuple[str, ...]:
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


def _zip_members(path: Path, limits: IngestLimits, budget: ByteBudget) -> Generator[Member, None, None]:
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:
        raise DatasetError("file", f"the zip archive is damaged: {short(exc)}") from exc
    with archive:
        infos = archive.infolist()
        if len(infos) > limits.max_entries:
            raise _too_many_entries(limits)
        # The central directory is at hand: vet every member before reading any of them.
        checked = []
        for info in infos:
            kind = _zip_kind(info)
            checked.append((info, kind, _check_member(info.filename, kind, info.file_size, budget)))
        budget.expect_images(sum(kind == "file" and may_be_image(parts) for _, kind, parts in checked))
        for info, kind, parts in checked:
            if kind == "file" and parts:
                opener = functools.partial(archive.open, info)
                yield Member(parts, opener, encrypted=bool(info.flag_bits & 0x1))


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
        raise DatasetError("file", f"the tar archive is damaged: {short(exc)}") from exc


def _tar_members(path: Path, limits: IngestLimits, budget: ByteBudget) -> Generator[Member, None, None]:
    with _open_tar(path) as archive:
        entries = iter(archive)
        count = 0
        while True:
            try:
                member = next(entries, None)
            except _TAR_ERRORS as exc:
                raise DatasetError("file", f"the tar archive is damaged: {short(exc)}") from exc
            if member is None:
                return
            count += 1
            if count > limits.max_entries:
                raise _too_many_entries(limits)
            kind = _tar_kind(member)
            parts = _check_member(member.name, kind, member.size, budget)
            if kind == "file" and parts:
                yield Member(parts, functools.partial(archive.extractfile, member))  # type: ignore[arg-type]


def archive_members(path: Path, limits: IngestLimits, budget: ByteBudget) -> Generator[Member, None, None]:
    # Tar first: zipfile.is_zipfile also says yes to a tar whose last member is a zip.
    try:
        is_tar = tarfile.is_tarfile(path)
    except _TAR_ERRORS as exc:  # a gzip stream that ends inside the first tar header
        raise DatasetError("file", f"the tar archive is damaged: {short(exc)}") from exc
    if is_tar:
        return _tar_members(path, limits, budget)
    if zipfile.is_zipfile(path):
        return _zip_members(path, limits, budget)
    if path.open("rb").read(4) == b"PK\x03\x04":
        raise DatasetError("file", "the zip archive is damaged (its end record is missing)")
    raise DatasetError("file", "not a zip or tar archive", 415)


def read_member(member: Member, budget: ByteBudget) -> bytes | str:
    """The member's bytes, or why it cannot be read (budget overruns raise instead)."""
    if member.encrypted:
        return "encrypted"
    try:
        with member.open() as stream:
            return budget.read(member.path, stream)
    except DatasetError:
        raise
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, *_TAR_ERRORS) as exc:
        return f"unreadable archive member: {short(exc)}"


# --------------------------------------------------------------------------------------------------
# Which members are images


def is_ignored(parts: tuple[str, ...]) -> bool:
    return (
        "__MACOSX" in parts
        or any(part.startswith(".") for part in parts)
        or parts[-1].lower() in _SYSTEM_FILES
    )


def may_be_image(parts: tuple[str, ...]) -> bool:
    """Whether a file member is decoded as an image (if it turns out to be one)."""
    return (
        bool(parts)
        and not is_ignored(parts)
        and parts[-1].lower() != LABELS_CSV
        and not looks_like_archive(parts[-1])
    )


def looks_like_archive(name: str, data: bytes | None = None) -> bool:
    if data is None:
        return name.lower().endswith(_ARCHIVE_SUFFIXES)
    return data.startswith(_ARCHIVE_MAGIC) or data[257:262] == b"ustar"
