"""A process's local copies of immutable store objects, bounded by size, least recently used out first.

Only files that never change once written are counted and evicted (checkpoints, packed data sets,
pictures, features, exported networks): an evicted one is fetched again when next needed. Manifests,
metrics and evaluation rows are small, are refreshed from the store on every read, and stay. Use is
recorded in the file's mtime, so the cache's order survives a restart of the process.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

IMMUTABLE_SUFFIXES = frozenset({".pt", ".npy", ".npz", ".png", ".onnx"})


class FileCache:
    def __init__(self, root: Path, max_bytes: int):
        self.root = Path(root)
        self.max_bytes = max_bytes
        self._lock = threading.Lock()

    def use(self, path: Path) -> bool:
        """Whether `path` is here; if so it becomes the most recently used."""
        try:
            os.utime(path)
        except (FileNotFoundError, NotADirectoryError):
            return False
        return True

    def added(self, path: Path) -> None:
        """`path` was just written here: evict the least recently used others until all fit."""
        if path.suffix not in IMMUTABLE_SUFFIXES:
            return
        with self._lock:
            files = sorted(self._files(), key=lambda item: item[1])
            total = sum(size for _, _, size in files)
            for name, _, size in files:
                if total <= self.max_bytes:
                    break
                if name != str(path):
                    Path(name).unlink(missing_ok=True)
                    total -= size

    def _files(self) -> list[tuple[str, int, int]]:
        """(path, mtime, size) of every evictable file."""
        found = []
        for folder, _, names in os.walk(self.root):
            for name in names:
                if os.path.splitext(name)[1] in IMMUTABLE_SUFFIXES and not name.startswith("."):
                    path = os.path.join(folder, name)
                    try:
                        stat = os.stat(path)
                    except FileNotFoundError:
                        continue
                    found.append((path, stat.st_mtime_ns, stat.st_size))
        return found
