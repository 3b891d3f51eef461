"""The floor plan (docs/architecture.md): which side of the torch line each folder is on, and what may
import what. Imports are read from the source with `ast`, those inside functions included.

    app/              HTTP; torch-free; imports workers.shared and nothing else of ours
    workers/shared/   torch-free: all that app/ may import; the vocabulary models/ builds on
    workers/jobs/     the torch side: job functions, the worker, the generate lane's consumer
    workers/local/    the local development stack; torch-free, it starts workers as processes
    workers/hooks/    the webhooks worker; torch-free, it imports workers.shared only
    models/           the PyTorch library; of workers/ it imports workers.shared only, and needs no
                      Redis and no HTTP
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FIRST_PARTY = ("app", "workers", "models")
TORCH = ("torch", "torchvision")
SERVICE = (
    "redis",
    "rq",
    "msgpack",
    "fastapi",
    "starlette",
    "uvicorn",
    "httpx",
    "pydantic",
    "pydantic_settings",
)


def within(name: str, *packages: str) -> bool:
    return any(name == package or name.startswith(package + ".") for package in packages)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@functools.cache
def modules() -> dict[str, Path]:
    return {
        module_name(path): path for folder in FIRST_PARTY for path in sorted((ROOT / folder).rglob("*.py"))
    }


@functools.cache
def imports_of(name: str) -> frozenset[str]:
    """Every module `name` imports. `from a.b import c` counts as a.b and as a.b.c (c may be a module)."""
    path = modules()[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            found.add(base)
            found.update(
                f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules()
            )
    return frozenset(found)


def under(package: str) -> list[str]:
    return [name for name in modules() if within(name, package)]


def offenders(package: str, allowed=lambda name: True, forbidden: tuple[str, ...] = ()) -> list[str]:
    return [
        f"{name} imports {imported}"
        for name in under(package)
        for imported in sorted(imports_of(name))
        if within(imported, *forbidden) or (within(imported, *FIRST_PARTY) and not allowed(imported))
    ]


def test_the_layout_is_read() -> None:
    """The checks below see the folders they are about (a moved folder must not make them pass empty)."""
    for package in ("app", "app.routers", "workers.shared", "workers.shared.datasets", "workers.jobs"):
        assert package in modules()
    assert "workers.local.stack" in modules() and "models.networks" in modules()
    assert "workers.shared.spec" in imports_of("models.networks")
    assert "workers.shared.datasets.archives" in imports_of("workers.shared.datasets.ingest")


def test_workers_has_no_loose_modules() -> None:
    """Every module of workers/ is in shared/, jobs/, local/ or hooks/, which say what it is."""
    loose = [path.name for path in (ROOT / "workers").glob("*.py")]
    assert sorted(loose) == ["__init__.py", "__main__.py"]
    folders = {
        path.name for path in (ROOT / "workers").iterdir() if path.is_dir() and path.name != "__pycache__"
    }
    assert folders == {"shared", "jobs", "local", "hooks"}


def test_the_api_imports_only_workers_shared() -> None:
    assert offenders("app", lambda name: within(name, "app", "workers.shared"), TORCH) == []


def test_workers_shared_is_torch_free_and_imports_no_job_code() -> None:
    assert offenders("workers.shared", lambda name: within(name, "workers.shared"), TORCH) == []


def test_the_local_stack_is_torch_free_and_runs_workers_as_processes() -> None:
    allowed = lambda name: within(name, "workers.local", "workers.shared")  # noqa: E731
    assert offenders("workers.local", allowed, TORCH) == []


def test_the_webhooks_worker_is_torch_free() -> None:
    assert "workers.hooks.delivery" in modules()
    assert (
        offenders("workers.hooks", lambda name: within(name, "workers.hooks", "workers.shared"), TORCH) == []
    )


def test_models_imports_no_api_and_no_worker_code() -> None:
    assert offenders("models", lambda name: within(name, "models", "workers.shared")) == []


def test_models_needs_no_redis_and_no_http() -> None:
    """Usable as a library: nothing models/ imports, itself or through workers.shared, is Redis, RQ,
    msgpack, pydantic or an HTTP package."""
    seen, pending, found = set(), under("models"), []
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        for imported in imports_of(name):
            if within(imported, *SERVICE):
                found.append(f"{name} imports {imported}")
            elif imported in modules():
                pending.append(imported)
    assert found == []


def test_torch_is_imported_only_on_the_torch_side() -> None:
    """Of app/ and workers/, only workers.jobs imports torch (models/ is the torch library)."""
    users = sorted(
        name
        for name in modules()
        if not within(name, "models", "workers.jobs") and any(within(i, *TORCH) for i in imports_of(name))
    )
    assert users == []
