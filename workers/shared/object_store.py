"""Where datasets and models are kept: the local directory itself, or an S3-compatible bucket
(`GANFORGE_STORAGE_URL=s3://bucket/prefix`) that every host shares.

Storage (workers.shared.storage) always works on files under its root. With a bucket, that root is the
process's cache directory, and a `Store` keeps it in step with the bucket:

- `publish(path)` uploads a file after it was written. Callers publish the objects first and the
  manifest that names them last, so a reader never finds a manifest naming a missing object.
- `refresh(path)` makes a mutable file (a manifest, metrics.jsonl, an evaluation row) the bucket's
  current version, asking the bucket each time (a conditional GET: unchanged files are not sent again).
- `fetch(path)` makes an immutable file (a checkpoint, a packed data set, a sample grid) local, once
  per host: it stays in the cache, bounded by size, least recently used first out (workers.shared.file_cache).
- `names(folder)` and `folders(folder)` list what the bucket holds under a folder.

The local `Store` does nothing but look at the directory: it is the default, and the layout of today.
Keys in the bucket are the files' paths relative to the root, under the URL's prefix.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from workers.shared.atomic import atomic_writer
from workers.shared.file_cache import FileCache


class StoreUnavailable(RuntimeError):
    """The store cannot be reached or refuses this process's credentials: worth retrying later."""


class StoreMisconfigured(StoreUnavailable):
    """The store's URL or bucket is wrong: retrying will not help until it is fixed."""


class Store:
    """The local directory as the store: every file is already where it is kept."""

    remote = False

    def __init__(self, root: Path):
        self.root = Path(root)

    def describe(self) -> str:
        return str(self.root)

    def check(self) -> None:
        """Raise StoreUnavailable unless files can be written to the store."""
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=self.root, prefix=".readyz-"):
                pass
        except OSError as error:
            raise StoreUnavailable(f"{self.root} is not writable: {error}") from error

    def refresh(self, path: Path) -> bool:
        return path.is_file()

    def fetch(self, path: Path) -> bool:
        return path.is_file()

    def publish(self, path: Path) -> None:
        """Nothing to do: the file is in the store."""

    def names(self, folder: Path) -> list[str]:
        """The names in `folder` (plain os.listdir: every generate request lists the checkpoints)."""
        try:
            return os.listdir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return []

    def folders(self, folder: Path) -> list[str]:
        try:
            return [entry.name for entry in os.scandir(folder) if entry.is_dir()]
        except (FileNotFoundError, NotADirectoryError):
            return []

    def delete(self, path: Path) -> None:
        """Forget the file in the store; the caller removes the local one."""

    def delete_tree(self, folder: Path) -> None:
        """Forget the folder in the store; the caller removes the local one."""


class S3Store(Store):
    """A bucket on any S3-compatible server (AWS S3, MinIO, Ceph RGW), through boto3, configured by the
    standard AWS variables (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
    AWS_DEFAULT_REGION). Thread-safe: a boto3 client may be shared between threads."""

    remote = True

    def __init__(self, url: str, root: Path, cache_bytes: int):
        super().__init__(root)
        import boto3  # here, so that a local deployment does not need it
        from botocore.config import Config

        parsed = urlparse(url)
        self.url = url
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        config = Config(connect_timeout=5, read_timeout=30, retries={"max_attempts": 3, "mode": "standard"})
        self.client = boto3.client("s3", config=config)
        self.cache = FileCache(self.root, cache_bytes)
        self._etags: dict[Path, str] = {}

    def describe(self) -> str:
        return self.url

    def check(self) -> None:
        """StoreMisconfigured when the bucket does not exist; StoreUnavailable when it cannot be reached or
        refuses the credentials."""
        with self._translated("reach"):
            self.client.head_bucket(Bucket=self.bucket)

    def refresh(self, path: Path) -> bool:
        known = self._etags.get(path) if path.is_file() else None
        conditions = {"IfNoneMatch": known} if known else {}
        try:
            with self._translated(f"read {self._key(path)}"):
                answer = self.client.get_object(Bucket=self.bucket, Key=self._key(path), **conditions)
        except _NotModified:
            return True
        except FileNotFoundError:
            self._etags.pop(path, None)
            path.unlink(missing_ok=True)
            return False
        self._write(path, answer)
        return True

    def fetch(self, path: Path) -> bool:
        if self.cache.use(path):
            return True
        try:
            with self._translated(f"read {self._key(path)}"):
                answer = self.client.get_object(Bucket=self.bucket, Key=self._key(path))
        except FileNotFoundError:
            return False
        self._write(path, answer)
        self.cache.added(path)
        return True

    def publish(self, path: Path) -> None:
        with self._translated(f"write {self._key(path)}"), path.open("rb") as body:
            answer = self.client.put_object(Bucket=self.bucket, Key=self._key(path), Body=body)
        self._etags[path] = answer["ETag"]
        self.cache.added(path)

    def names(self, folder: Path) -> list[str]:
        return [name for name in self._listing(folder, "Contents", "Key") if name]

    def folders(self, folder: Path) -> list[str]:
        return self._listing(folder, "CommonPrefixes", "Prefix")

    def delete(self, path: Path) -> None:
        with self._translated(f"delete {self._key(path)}"):
            self.client.delete_object(Bucket=self.bucket, Key=self._key(path))

    def delete_tree(self, folder: Path) -> None:
        """Every object under `folder`, its manifest first: a reader sees the whole thing or nothing."""
        manifest = self._key(folder / "manifest.json")
        rest = [key for key in self._keys_under(folder) if key != manifest]
        with self._translated(f"delete {self._key(folder)}/"):
            self.client.delete_object(Bucket=self.bucket, Key=manifest)  # alone: a batch has no order
            for start in range(0, len(rest), 1000):
                batch = [{"Key": key} for key in rest[start : start + 1000]]
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})

    def _key(self, path: Path) -> str:
        relative = Path(path).relative_to(self.root).as_posix()
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def _listing(self, folder: Path, part: str, field: str) -> list[str]:
        """Names directly under `folder`: its objects (`Contents`) or its sub-folders (`CommonPrefixes`)."""
        start = self._key(folder).rstrip("/") + "/"
        names = []
        with self._translated(f"list {start}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=start, Delimiter="/"
            )
            for page in pages:
                names += [item[field][len(start) :].rstrip("/") for item in page.get(part, [])]
        return names

    def _keys_under(self, folder: Path) -> list[str]:
        start = self._key(folder).rstrip("/") + "/"
        with self._translated(f"list {start}"):
            pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start)
            return [item["Key"] for page in pages for item in page.get("Contents", [])]

    def _write(self, path: Path, answer: dict[str, Any]) -> None:
        with self._translated(f"read {self._key(path)}"), atomic_writer(path) as handle:
            for chunk in answer["Body"].iter_chunks(2**20):
                handle.write(chunk)
        self._etags[path] = answer["ETag"]

    @contextlib.contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """boto3's errors as ours: missing key → FileNotFoundError, 304 → _NotModified, missing bucket →
        StoreMisconfigured, unreachable or refused → StoreUnavailable."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            yield
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in ("304", "NotModified"):
                raise _NotModified from None
            if code == "NoSuchBucket" or (code == "404" and action == "reach"):
                missing = f"the store {self.url}: bucket {self.bucket!r} does not exist"
                raise StoreMisconfigured(missing) from None
            if code in ("NoSuchKey", "404"):
                raise FileNotFoundError(f"{self.url}: no object {action.split(' ', 1)[-1]}") from None
            raise StoreUnavailable(f"the store {self.url} refused to {action}: {error}") from error
        except BotoCoreError as error:
            raise StoreUnavailable(f"the store {self.url} could not {action}: {error}") from error


class _NotModified(Exception):
    """A conditional GET found the local copy current."""


def open_store(url: str, root: Path, cache_bytes: int) -> Store:
    """The store that `url` names: empty for the local directory `root`, `s3://bucket/prefix` for a
    bucket whose local cache is `root`."""
    if not url:
        return Store(root)
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise StoreMisconfigured(f"GANFORGE_STORAGE_URL must be empty or s3://bucket/prefix, not {url!r}")
    return S3Store(url, root, cache_bytes)
