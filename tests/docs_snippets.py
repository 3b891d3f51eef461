"""docs/export.md's Python blocks, run as a reader runs them: the first defines the seed → latent and PNG
helpers, the others use an exported file in the current folder."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

EXPORT_DOC = Path(__file__).resolve().parents[1] / "docs" / "export.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", EXPORT_DOC.read_text(), flags=re.MULTILINE | re.DOTALL)


def run_blocks(*indices: int) -> dict[str, Any]:
    """The namespace after running the helpers block, then the blocks at `indices`."""
    blocks = python_blocks()
    namespace: dict[str, Any] = {}
    for index in (0, *indices):
        exec(compile(blocks[index], f"{EXPORT_DOC}:block-{index}", "exec"), namespace)
    return namespace
