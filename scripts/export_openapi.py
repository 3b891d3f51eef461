"""The API contract's snapshot: docs/openapi.json, the OpenAPI document the API serves at /openapi.json.
tests/api/test_openapi_contract.py fails when the two differ, so that every change to the API is
deliberate: after changing it, regenerate the snapshot and review its diff.

    .venv/bin/python -m scripts.export_openapi           write docs/openapi.json
    .venv/bin/python -m scripts.export_openapi --check   exit 1, printing the diff, if it is stale
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

SNAPSHOT = Path(__file__).resolve().parent.parent / "docs" / "openapi.json"
COMMAND = ".venv/bin/python -m scripts.export_openapi"


def served_document() -> dict[str, Any]:
    """The document as the API builds it (no server, no Redis: only the routes are read)."""
    from app.main import create_app

    return create_app().openapi()


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def diff(old: dict[str, Any], new: dict[str, Any], limit: int = 80) -> str:
    """A unified diff from `old` to `new`, at most `limit` lines of it."""
    lines = list(
        difflib.unified_diff(
            render(old).splitlines(), render(new).splitlines(), "docs/openapi.json", "served", lineterm=""
        )
    )
    more = f"\n… and {len(lines) - limit} more lines" if len(lines) > limit else ""
    return "\n".join(lines[:limit]) + more


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--check", action="store_true", help="compare only; exit 1 if the snapshot is stale")
    args = parser.parse_args(argv)
    document = served_document()
    if args.check:
        snapshot = json.loads(SNAPSHOT.read_text())
        if snapshot == document:
            return 0
        print(f"{diff(snapshot, document)}\n\ndocs/openapi.json is stale: regenerate it with {COMMAND}")
        return 1
    SNAPSHOT.write_text(render(document))
    print(f"wrote {SNAPSHOT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
