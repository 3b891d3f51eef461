"""Import every module under the given folders with this Python, then run the tests that can run here.

Run by scripts/test-floor under the oldest supported Python, in a venv without torch (and, on 3.10,
without schemathesis). A module whose import needs one of those is listed and skipped; any other
import failure fails, and so does a module that must not need torch (app/, workers/shared/,
workers/local/, workers/hooks/: the floor plan in docs/architecture.md) but does. pytest then runs
without the test modules so skipped and without the integration tests (tests/integration/, and any test
marked integration): they start worker processes, which need torch.

    python scripts/check_python_floor.py app workers models bench scripts tests -- [pytest arguments]
"""

from __future__ import annotations

import importlib
import subprocess
import sys
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_HERE = ("torch", "schemathesis")  # left out of the floor's venv on purpose (see scripts/test-floor)
# The API, what it may import, and the local stack: the torch-free side of the floor plan.
MUST_IMPORT_WITHOUT_TORCH = ("app", "workers.shared", "workers.local", "workers.hooks")


def module_names(folder: str) -> list[tuple[str, Path]]:
    names = []
    for path in sorted((ROOT / folder).rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        names.append((".".join(parts), path.relative_to(ROOT)))
    return names


def not_here(error: ModuleNotFoundError) -> str | None:
    missing = (error.name or "").split(".")[0]
    return missing if missing in NOT_HERE else None


def torch_free(name: str) -> bool:
    return any(name == package or name.startswith(package + ".") for package in MUST_IMPORT_WITHOUT_TORCH)


def import_all(folders: list[str]) -> tuple[list[tuple[str, Path]], list[str]]:
    """Import each module; return those that need a package left out here, and the failures."""
    without, failures = [], []
    for folder in folders:
        for name, path in module_names(folder):
            try:
                importlib.import_module(name)
            except ModuleNotFoundError as error:
                missing = not_here(error)
                if missing and not (missing == "torch" and torch_free(name)):
                    without.append((f"{name} ({missing})", path))
                else:
                    failures.append(f"{name}:\n{traceback.format_exc()}")
            except BaseException:
                failures.append(f"{name}:\n{traceback.format_exc()}")
    return without, failures


def main(argv: list[str]) -> int:
    folders, pytest_args = argv, []
    if "--" in argv:
        split = argv.index("--")
        folders, pytest_args = argv[:split], argv[split + 1 :]
    sys.path.insert(0, str(ROOT))
    version = ".".join(map(str, sys.version_info[:3]))
    without, failures = import_all(folders)
    total = sum(len(module_names(folder)) for folder in folders)
    print(f"Python {version}: {total - len(without) - len(failures)} of {total} modules imported")
    if without:
        print(f"{len(without)} need a package left out here: {', '.join(name for name, _ in without)}")
    if failures:
        print(f"{len(failures)} failed:\n" + "\n".join(failures), file=sys.stderr)
        return 1
    skipped_tests = [path for name, path in without if path.name.startswith("test_")]
    # The integration tests start worker processes, which need torch: left out by folder and by marker.
    command = [sys.executable, "-m", "pytest", "-m", "not integration", "--ignore=tests/integration"]
    command += [f"--ignore={path}" for path in skipped_tests] + pytest_args
    print(f"pytest, without the integration tests and the {len(skipped_tests)} test modules above")
    return subprocess.call(command, cwd=ROOT)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
