"""Age groups: classes named by increasing lower edges (`age_bins`), "0-18", "19-29", ..., "60+",
kept in age order; checking and parsing the edges a request gives."""

from __future__ import annotations

import bisect
import itertools
import re
from collections.abc import Sequence

from workers.shared.datasets.errors import DatasetError

# The six Age-cGAN groups 0-18, 19-29, 30-39, 40-49, 50-59, 60+, as lower edges.
DEFAULT_AGE_BINS: tuple[int, ...] = (0, 19, 30, 40, 50, 60)
MAX_AGE_BINS = 20
MAX_AGE = 120  # older is taken for a typo and the file skipped


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


def age_bins_error(reason: str) -> DatasetError:
    return DatasetError("age_bins", reason, 422)


def check_age_bins(edges: Sequence[int]) -> tuple[int, ...]:
    """The edges as a tuple, or DatasetError (field age_bins, 422) saying what is wrong with them."""
    if isinstance(edges, (str, bytes)) or not isinstance(edges, Sequence):
        raise age_bins_error(f"age_bins must be a list of whole numbers, got {edges!r}")
    if not edges:
        raise age_bins_error("age_bins is empty: give increasing lower edges such as 0,19,30,40,50,60")
    if any(isinstance(edge, bool) or not isinstance(edge, int) for edge in edges):
        raise age_bins_error(f"age_bins must be whole numbers, got {list(edges)!r}")
    if len(edges) > MAX_AGE_BINS:
        raise age_bins_error(f"age_bins has {len(edges)} bins; at most {MAX_AGE_BINS} are allowed")
    if min(edges) < 0:
        raise age_bins_error(f"age_bins cannot be negative (got {min(edges)})")
    if max(edges) > MAX_AGE:
        raise age_bins_error(f"age_bins edge {max(edges)} is above the oldest accepted age ({MAX_AGE})")
    for low, high in itertools.pairwise(edges):
        if high <= low:
            raise age_bins_error(f"age_bins must be strictly increasing ({high} follows {low})")
    return tuple(edges)


def parse_age_bins(text: str) -> tuple[int, ...]:
    """Comma-separated lower edges ("0,19,30,40,50,60") → checked tuple; DatasetError (age_bins, 422)."""
    if not text.strip():
        raise age_bins_error("age_bins is empty: give increasing lower edges such as 0,19,30,40,50,60")
    items = [item.strip() for item in text.split(",")]
    bad = [item for item in items if not re.fullmatch(r"[+-]?\d{1,9}", item)]
    if bad:
        raise age_bins_error(
            f"age_bins must be comma-separated whole numbers such as 0,19,30; {clip(bad[0])!r} is not one"
        )
    return check_age_bins([int(item) for item in items])


def clip(text: str, width: int = 20) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
