"""The README's quickstart and docs/walkthrough.md, run as a reader runs them: their bash blocks,
extracted from the markdown, in a fresh folder, against a real stack.

Two things differ from a reader's terminal, both outside the text: the stack listens on a free port
instead of 8000 (the address is rewritten, and GANFORGE_URL tells `ganforge watch`), and the
walkthrough trains `STEPS=200` (its text reads `STEPS=${STEPS:-3000}`)."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image

from tests.integration.conftest import Stack, running_stack

REPOSITORY = Path(__file__).resolve().parents[2]
DOCUMENTED_URL = "http://127.0.0.1:8000"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """A stack of its own whose workers use both cores, as `scripts/run`'s do: the quickstart trains
    its full 1,000 steps."""
    yield from running_stack(tmp_path_factory, "docs", {"GANFORGE_TORCH_THREADS": str(os.cpu_count() or 1)})


def bash_blocks(markdown: str) -> list[str]:
    return re.findall(r"^```bash\n(.*?)^```", markdown, flags=re.MULTILINE | re.DOTALL)


def section(markdown: str, heading: str) -> str:
    """The text under `## heading`, up to the next heading of that level."""
    start = markdown.index(f"\n## {heading}\n")
    end = markdown.find("\n## ", start + 1)
    return markdown[start : end if end != -1 else None]


def run_script(script: str, stack: Stack, folder: Path, timeout: float) -> subprocess.CompletedProcess:
    """Run `script` with bash -e in `folder`, which sees the repository's .venv and scripts/ as a
    reader's checkout would."""
    for name in (".venv", "scripts"):
        (folder / name).symlink_to(REPOSITORY / name)
    return subprocess.run(
        ["bash", "-e", "-o", "pipefail", "-c", script.replace(DOCUMENTED_URL, stack.url)],
        cwd=folder,
        env={**stack.env, "STEPS": "200", "GANFORGE_URL": stack.url},  # for `ganforge watch`
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def image_size(path: Path) -> tuple[int, int]:
    with Image.open(path) as image:
        image.verify()
    with Image.open(path) as image:
        return image.size


@pytest.mark.timeout(1800)
def test_the_readme_quickstart_runs_as_written(stack: Stack, tmp_path: Path) -> None:
    readme = (REPOSITORY / "README.md").read_text()
    (script,) = bash_blocks(section(readme, "Quickstart"))
    assert "8000" in script and '"steps": 1000' in script  # what a reader copies

    done = run_script(script, stack, tmp_path, timeout=1700)

    assert done.returncode == 0, done.stdout + done.stderr
    assert "completed" in done.stdout
    width, height = image_size(tmp_path / "sevens.png")
    assert width == height > 4 * 32  # a 4×4 grid of 32 px digits with its spacing


@pytest.mark.timeout(1800)
def test_the_walkthrough_runs_as_written(stack: Stack, tmp_path: Path) -> None:
    walkthrough = (REPOSITORY / "docs" / "walkthrough.md").read_text()
    script = "\n".join(bash_blocks(walkthrough))
    assert "STEPS=${STEPS:-3000}" in script

    done = run_script(script, stack, tmp_path, timeout=1700)

    assert done.returncode == 0, done.stdout + done.stderr
    pictures = ("preview.png", "grid.png", "losses.png", "squares.png", "circle.png", "arithmetic.png")
    for picture in (*pictures, "morph.png", "transform.png"):
        width, height = image_size(tmp_path / picture)
        assert min(width, height) >= 32, picture
    with Image.open(tmp_path / "walk.gif") as gif:
        assert gif.n_frames > 2  # an animation: the two ends and steps between them
    assert "my_circle" in done.stdout  # the inversion's answer names the latent it saved


pytestmark = pytest.mark.integration
