"""Running `ganforge` as a user does: a subprocess of this repository's code, with the connection in the
environment (GANFORGE_URL, GANFORGE_API_KEY)."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[2]


@dataclass
class Cli:
    env: dict[str, str] = field(default_factory=dict)

    def __call__(
        self, *arguments: str, timeout: float = 240, text: bool = True
    ) -> subprocess.CompletedProcess:
        """Run `ganforge ARGUMENTS`; its output as text, or as bytes with `text=False`."""
        return subprocess.run(
            [sys.executable, "-m", "app.cli", *arguments],
            cwd=REPOSITORY,
            env=self.env,
            capture_output=True,
            text=text,
            timeout=timeout,
        )

    def ok(self, *arguments: str, timeout: float = 240) -> subprocess.CompletedProcess:
        """Run a command that must succeed."""
        done = self(*arguments, timeout=timeout)
        assert done.returncode == 0, f"{arguments}: exit {done.returncode}\n{done.stdout}\n{done.stderr}"
        return done

    def json(self, *arguments: str, timeout: float = 240) -> Any:
        """Run a command that must succeed with --json; its stdout as JSON."""
        return json.loads(self.ok(*arguments, "--json", timeout=timeout).stdout)
