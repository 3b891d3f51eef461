"""An LRU cache of loaded generators, bounded by the memory their weights take.

Keyed by (model id, checkpoint step): a new checkpoint is a new entry, and an entry nobody asks for
any more — a deleted model's included — ages out. Thread-safe: the sampling worker's generate consumer
and its RQ jobs share it.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

import torch

Value = TypeVar("Value")
Key = tuple[str, int]


def weight_bytes(module: torch.nn.Module) -> int:
    tensors = [*module.parameters(), *module.buffers()]
    return sum(tensor.numel() * tensor.element_size() for tensor in tensors)


class ModelCache(Generic[Value]):
    def __init__(self, budget_bytes: int, size_of: Callable[[Value], int]):
        self.budget_bytes = budget_bytes
        self.size_of = size_of
        self._entries: OrderedDict[Key, tuple[Value, int]] = OrderedDict()
        self.hits = 0  # since the process started: /metrics reports them (workers.shared.fleet_metrics)
        self.misses = 0
        self._lock = threading.Lock()  # held while loading, so two threads never load the same entry twice

    @property
    def used_bytes(self) -> int:
        return sum(size for _, size in self._entries.values())

    def figures(self) -> dict[str, int]:
        """Hits, misses, bytes and entries, as /metrics reports them. Without the lock, which a load
        holds for as long as it takes: copying the entries (one C call under the GIL) is safe."""
        sizes = [size for _, size in list(self._entries.values())]
        return {"hits": self.hits, "misses": self.misses, "bytes": sum(sizes), "entries": len(sizes)}

    def get(self, key: Key, load: Callable[[], Value]) -> Value:
        """The cached value for `key`, loading it on a miss. The newest entry is always kept, even
        when it alone is over the budget."""
        with self._lock:
            if key in self._entries:
                self.hits += 1
                self._entries.move_to_end(key)
                return self._entries[key][0]
            self.misses += 1
            value = load()
            self._entries[key] = (value, self.size_of(value))
            while len(self._entries) > 1 and self.used_bytes > self.budget_bytes:
                self._entries.popitem(last=False)
            return value
