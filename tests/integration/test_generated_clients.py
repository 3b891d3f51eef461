"""Clients generated from the live /openapi.json with the commands docs/api.md gives an app developer
drive the main flow against a real stack: openapi-python-client's package, and openapi-typescript's
types with openapi-fetch under Node. Each generator must finish without a single warning, and the
TypeScript flow must type-check against the generated types (tsc, strict).

The TypeScript toolchain is pinned in tests/clients/typescript/package-lock.json; its node_modules is
installed by scripts/install, or here when missing. Without Node.js and npm that test is skipped."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CLIENTS = ROOT / "tests" / "clients"
TYPESCRIPT = CLIENTS / "typescript"
WARNING = re.compile(r"warn|error|cannot|could not|skipping|not in path", re.IGNORECASE)


def run(command: list[Any], cwd: Path = ROOT, env: dict[str, str] | None = None, timeout: float = 300) -> str:
    """Run `command`; its stdout and stderr together, or fail with them."""
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{output}"
    return output


def assert_no_warnings(output: str) -> None:
    assert not WARNING.search(output), output


@pytest.fixture(scope="module")
def demo_files(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A small demo archive (scripts/make_demo_archive.py: circles and squares), and one of its circles."""
    folder = tmp_path_factory.mktemp("demo")
    archive, image = folder / "shapes.zip", folder / "circle.png"
    run([sys.executable, ROOT / "scripts" / "make_demo_archive.py", archive, "--per-class", "16"])
    with zipfile.ZipFile(archive) as members:
        image.write_bytes(members.read("shapes/circles/0000.png"))
    return archive, image


def check_flow(summary: dict[str, Any]) -> None:
    """What a flow script printed: every step answered as the API documents."""
    assert summary["dataset"] == {"count": 32, "classes": ["circles", "squares"]}
    training = summary["training"]
    assert training["status"] == "completed" and training["step"] == 20
    assert training["location"].startswith("/v1/training-jobs/tj_")
    assert summary["generate"] == {"seeds": "7,8", "labels": ["circles", "circles"], "size": [32, 32]}
    assert summary["arithmetic"] == {"latent": 16, "variations": 2}
    transform = summary["transform"]
    assert transform["labels"] == ["circles", "squares"] and transform["size"] == [32, 32]
    assert transform["mse"] >= 0


def test_python_client(stack: Stack, demo_files: tuple[Path, Path], tmp_path: Path) -> None:
    generator = Path(sys.executable).parent / "openapi-python-client"
    if not generator.exists():
        pytest.skip("openapi-python-client is not installed (it needs Python 3.11+)")
    env = {**os.environ, "PATH": f"{generator.parent}{os.pathsep}{os.environ['PATH']}"}  # its ruff hooks
    output = run(
        [generator, "generate", "--url", f"{stack.url}/openapi.json", "--fail-on-warning"],
        cwd=tmp_path,
        env=env,
    )
    assert_no_warnings(output)
    package = tmp_path / "ganforge-client"
    assert (package / "ganforge_client" / "api" / "models" / "models_generate.py").is_file()

    flow = run(
        [sys.executable, CLIENTS / "python" / "flow.py", stack.url, *demo_files],
        env={**os.environ, "PYTHONPATH": str(package)},
    )
    check_flow(json.loads(flow.splitlines()[-1]))


def node_modules() -> None:
    """The pinned toolchain in tests/clients/typescript/node_modules, installed unless it is current."""
    installed = TYPESCRIPT / "node_modules" / ".package-lock.json"
    lock = TYPESCRIPT / "package-lock.json"
    if not installed.exists() or installed.stat().st_mtime < lock.stat().st_mtime:
        run(["npm", "ci", "--no-audit", "--no-fund"], cwd=TYPESCRIPT, timeout=600)


def test_typescript_client(stack: Stack, demo_files: tuple[Path, Path], tmp_path: Path) -> None:
    if not (shutil.which("node") and shutil.which("npm")):
        pytest.skip("Node.js and npm are not installed")
    node_modules()
    for name in ("package.json", "tsconfig.json", "flow.ts"):
        shutil.copy(TYPESCRIPT / name, tmp_path / name)
    (tmp_path / "node_modules").symlink_to(TYPESCRIPT / "node_modules")
    tools = tmp_path / "node_modules" / ".bin"
    output = run(
        [
            tools / "openapi-typescript",
            f"{stack.url}/openapi.json",
            "--output",
            "ganforge.d.ts",
            "--default-non-nullable",
            "false",
        ],
        cwd=tmp_path,
    )
    assert_no_warnings(output)
    assert run([tools / "tsc", "-p", "."], cwd=tmp_path) == ""  # type-checks, strict, without a message

    flow = run(["node", tmp_path / "build" / "flow.js", stack.url, *demo_files], cwd=tmp_path)
    check_flow(json.loads(flow.splitlines()[-1]))
