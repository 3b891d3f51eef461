"""`ganforge export` against a real stack: an ONNX and a TorchScript file of a tiny model's generator,
downloaded with -o, and the job printed without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.cli import Cli
from tests.integration.conftest import Stack

onnx = pytest.importorskip("onnx")


@pytest.fixture(scope="module")
def cli(stack: Stack) -> Cli:
    return Cli({**stack.env, "GANFORGE_URL": stack.url})


@pytest.fixture(scope="module")
def model(cli: Cli) -> str:
    tiny = ("--latent-dim", "16", "--base-channels", "8", "--batch-size", "8", "--encoder-steps", "0")
    return cli.json("train", "--dataset", "digits", "--steps", "4", *tiny, "--watch")["model_id"]


def test_export_onnx_waits_and_downloads_the_file(cli: Cli, model: str, tmp_path: Path) -> None:
    file = tmp_path / "generator.onnx"
    done = cli.ok("export", model, "--format", "onnx", "-o", str(file))
    assert f"wrote {file}" in done.stderr
    onnx.checker.check_model(onnx.load(str(file)))  # a valid ONNX graph
    record = cli.json("export", model, "--format", "onnx", "--checkpoint", "newest", "--wait")
    assert record["id"]


def test_export_torchscript_and_without_waiting(cli: Cli, model: str, tmp_path: Path) -> None:
    file = tmp_path / "generator.pt"
    cli.ok("export", model, "--format", "torchscript", "--checkpoint", "4", "-o", str(file))
    assert file.stat().st_size > 1000 and file.read_bytes()[:2] == b"PK"  # TorchScript is a zip archive
    queued = cli.json("export", model, "--format", "onnx")
    assert queued["location"] == f"/v1/jobs/{queued['id']}"
    assert cli.ok("watch", queued["id"]).stdout.strip() == f"{queued['id']}: finished"


def test_export_refuses_an_unknown_format_and_model(cli: Cli, model: str) -> None:
    assert cli("export", model, "--format", "pickle").returncode == 2
    missing = cli("export", "m_000000000000", "--format", "onnx")
    assert missing.returncode == 3 and "404" in missing.stderr
