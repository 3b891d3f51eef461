"""File names inside a training run's folder. No torch here: the API lists these files too."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

STEP_FILE = re.compile(r"^step-(\d{6,})\.(pt|png)$")


def checkpoint_path(run: Path, step: int) -> Path:
    return run / "checkpoints" / f"step-{step:06d}.pt"


def sample_path(run: Path, step: int) -> Path:
    return run / "samples" / f"step-{step:06d}.png"


def encoder_path(run: Path) -> Path:
    """The inversion encoder E (E(G(z, y)) ≈ z), trained after the GAN."""
    return run / "encoder.pt"


def metrics_path(run: Path) -> Path:
    return run / "metrics.jsonl"


def evaluation_path(run: Path, step: int, samples: int) -> Path:
    """One evaluation row per checkpoint and sample count: evaluating again replaces it."""
    return run / "evaluations" / f"step-{step:06d}-n{samples}.json"


def _steps(folder: Path, extension: str) -> list[int]:
    """Plain `os.listdir`: every generate request lists the checkpoints, and Path objects per entry
    cost several times the listing itself."""
    try:
        names = os.listdir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return []
    return steps_named(names, extension)


def steps_named(names: list[str], extension: str) -> list[int]:
    """The steps of the `step-NNNNNN.{extension}` files among `names`, oldest first."""
    matches = (STEP_FILE.match(name) for name in names)
    return sorted(int(match.group(1)) for match in matches if match and match.group(2) == extension)


def checkpoint_steps(run: Path) -> list[int]:
    """Steps of the run's checkpoints, oldest first."""
    return _steps(run / "checkpoints", "pt")


def sample_steps(run: Path) -> list[int]:
    return _steps(run / "samples", "png")


def read_metrics(run: Path) -> list[dict]:
    """The rows of metrics.jsonl, oldest first."""
    path = metrics_path(run)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def last_metrics(run: Path) -> dict | None:
    """The newest row of metrics.jsonl, reading only the file's tail (a long run logs many rows)."""
    path = metrics_path(run)
    if not path.exists():
        return None
    with path.open("rb") as handle:
        handle.seek(max(0, handle.seek(0, 2) - 4096))
        lines = [line for line in handle.read().splitlines() if line.strip()]
    return json.loads(lines[-1]) if lines else None


def read_evaluations(run: Path) -> list[dict]:
    """The run's evaluation rows, by step then sample count."""
    folder = run / "evaluations"
    if not folder.is_dir():
        return []
    rows = [json.loads(path.read_text()) for path in folder.glob("step-*.json")]
    return sorted(rows, key=lambda row: (row["step"], row["samples"]))


def best_evaluation(rows: list[dict], steps_on_disk: list[int]) -> dict | None:
    """The row with the lowest FID among checkpoints still on disk. FID falls as the sample count grows
    (it is biased upward for small sets), so only rows of one sample count are compared: the count
    that evaluated the most checkpoints, the larger one on a tie."""
    rows = [row for row in rows if row.get("fid") is not None and row["step"] in steps_on_disk]
    if not rows:
        return None
    counts: dict[int, int] = {}
    for row in rows:
        counts[row["samples"]] = counts.get(row["samples"], 0) + 1
    samples = max(counts, key=lambda count: (counts[count], count))
    return min((row for row in rows if row["samples"] == samples), key=lambda row: (row["fid"], -row["step"]))
