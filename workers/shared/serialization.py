"""The one format of everything ganforge writes to Redis as a Python value: RQ's job data and results
(`Queue`, `Job.fetch` and workers take `serializer=DataSerializer`) and the generate lane's answers.

msgpack, not pickle: unpacking builds only plain values (None, bools, numbers, str, bytes, lists,
dicts), so whoever can write a key in Redis can at worst hand ganforge bad data, never code to run.
msgpack rather than JSON because results carry PNG and GIF bytes, which JSON would need base64 for
(a third larger, and an encode and a decode on the hot path).

Two more kinds of value travel, each rebuilt from data only:
- numpy arrays (a prepared image as a job argument): an extension holding dtype, shape and raw bytes,
  restricted to numeric dtypes;
- numpy scalars (figures in results) become Python numbers.
Tuples come back as lists.
"""

from __future__ import annotations

from typing import Any

import msgpack
import numpy as np

_NDARRAY = 1  # msgpack extension type code of a numpy array
_ARRAY_KINDS = frozenset("biuf")  # bool, signed, unsigned, float: never object arrays


class UnreadableData(ValueError):
    """A value in Redis that is not data ganforge wrote: malformed, or something else (a pickle)."""


def _encode(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.kind not in _ARRAY_KINDS:
            raise TypeError(f"numpy arrays of dtype {value.dtype} cannot be stored in Redis")
        header = msgpack.packb([value.dtype.str, list(value.shape)])
        return msgpack.ExtType(_NDARRAY, header + np.ascontiguousarray(value).tobytes())
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not data that can be stored in Redis")


def _decode_ext(code: int, payload: bytes) -> np.ndarray:
    if code != _NDARRAY:
        raise UnreadableData(f"unknown msgpack extension type {code}")
    unpacker = msgpack.Unpacker(raw=False)
    unpacker.feed(payload)
    dtype_text, shape = next(unpacker)
    dtype = np.dtype(dtype_text)
    if dtype.kind not in _ARRAY_KINDS:
        raise UnreadableData(f"numpy dtype {dtype_text!r} is not allowed")
    return np.frombuffer(payload[unpacker.tell() :], dtype=dtype).reshape(shape).copy()  # writable


class DataSerializer:
    """RQ's serializer protocol (`dumps`, `loads`) over msgpack."""

    @staticmethod
    def dumps(value: Any) -> bytes:
        return msgpack.packb(value, use_bin_type=True, default=_encode)

    @staticmethod
    def loads(raw: bytes) -> Any:
        try:
            return msgpack.unpackb(raw, raw=False, ext_hook=_decode_ext)
        except UnreadableData:
            raise
        except Exception as error:  # msgpack raises several kinds on malformed input
            raise UnreadableData(f"not ganforge data ({type(error).__name__}: {error})") from error
