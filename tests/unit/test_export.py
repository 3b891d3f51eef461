"""Exporting generators (models.export) in both formats, for both architectures, with and without labels;
the export job's keep-or-fail step; and docs/export.md's numpy latents against the service's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from models.export import export_generator, run_exported, verify_export
from models.networks import Generator
from models.sampling import latent_for_seed
from tests.docs_snippets import run_blocks
from workers.jobs.export import ExportMismatch, keep_verified
from workers.shared.export_format import TOLERANCE
from workers.shared.exports import ExportRecord, file_path, read_export, write_export
from workers.shared.spec import NetworkSpec
from workers.shared.storage import Storage, utc_now


def tiny_generator(
    architecture: str, num_classes: int, seed: int = 0, conditioning: str = "input"
) -> Generator:
    torch.manual_seed(seed)
    spec = NetworkSpec(
        image_size=32,
        channels=3,
        latent_dim=8,
        base_channels=4,
        num_classes=num_classes,
        architecture=architecture,
        conditioning=conditioning,
    )
    generator = Generator(spec)
    for module in generator.modules():  # running statistics as a trained generator has them
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    return generator.to(memory_format=torch.channels_last).eval().requires_grad_(False)


@pytest.mark.parametrize("format", ["onnx", "torchscript"])
@pytest.mark.parametrize("architecture", ["dcgan", "resnet"])
@pytest.mark.parametrize(("num_classes", "conditioning"), [(0, "input"), (3, "input"), (3, "batchnorm")])
def test_an_export_computes_what_the_generator_computes(
    format: str, architecture: str, num_classes: int, conditioning: str
) -> None:
    generator = tiny_generator(architecture, num_classes, conditioning=conditioning)
    data = export_generator(generator, format)

    assert verify_export(generator, data, format) <= TOLERANCE
    for batch in (1, 5):  # a batch size other than the one it was exported with
        latents = torch.randn(batch, 8)
        labels = torch.arange(batch) % num_classes if num_classes else None
        images = run_exported(data, format, latents.numpy(), labels.numpy() if labels is not None else None)
        expected = generator(latents, labels).numpy()
        assert images.shape == (batch, 3, 32, 32) and images.dtype == np.float32
        assert np.abs(images - expected).max() <= TOLERANCE
        assert images.min() >= -1 and images.max() <= 1


def test_verification_measures_the_difference() -> None:
    """A file made from one generator, checked against another: far beyond the tolerance."""
    data = export_generator(tiny_generator("dcgan", 3, seed=1), "onnx")
    assert verify_export(tiny_generator("dcgan", 3, seed=2), data, "onnx") > 10 * TOLERANCE


def queued(storage: Storage) -> ExportRecord:
    record = ExportRecord(
        id="e1",
        model_id="m_1",
        format="onnx",
        step=10,
        status="running",
        created_at=utc_now(),
        latent_dim=8,
        labels=[],
        image_size=32,
        channels=3,
    )
    return write_export(storage, record)


def test_a_verified_export_is_kept_with_its_figures(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    record = keep_verified(storage, queued(storage), b"the file", 2e-7)
    assert read_export(storage, "m_1", "e1") == record
    assert record.status == "completed" and record.max_difference == 2e-7 and record.file_bytes == 8
    assert record.file_url == "/v1/models/m_1/exports/e1/file" and record.finished_at is not None
    assert file_path(storage, record).read_bytes() == b"the file"


def test_an_export_beyond_the_tolerance_fails_and_keeps_no_file(tmp_path: Path) -> None:
    storage = Storage(tmp_path)
    record = queued(storage)
    with pytest.raises(ExportMismatch, match="differs"):
        keep_verified(storage, record, b"the file", 0.5)
    stored = read_export(storage, "m_1", "e1")
    assert stored.status == "failed" and stored.max_difference == 0.5 and "0.5 > 0.001" in stored.error
    assert stored.file_url is None and not file_path(storage, record).exists()


@pytest.mark.parametrize("latent_dim", [2, 3, 8, 15, 16, 17, 31, 32, 100, 128, 200, 512])
def test_the_docs_numpy_latents_are_the_services(latent_dim: int) -> None:
    latent_for_seed_numpy = run_blocks()["latent_for_seed"]
    for seed in (0, 1, 7, 12345, 2**31 + 3, 2**40 + 9, 2**63 - 1):
        expected = latent_for_seed(seed, latent_dim).numpy()
        drawn = latent_for_seed_numpy(seed, latent_dim)
        assert drawn.dtype == np.float32 and drawn.shape == (latent_dim,)
        assert np.abs(drawn - expected).max() < 1e-5, (seed, latent_dim)


def test_the_docs_png_writer_writes_what_pillow_reads(tmp_path: Path) -> None:
    from PIL import Image

    write_png = run_blocks()["write_png"]
    pixels = np.random.default_rng(0).integers(0, 256, (2, 5, 7, 3), dtype=np.uint8)
    for channels in (1, 3):
        path = tmp_path / f"{channels}.png"
        write_png(str(path), pixels[0, :, :, :channels])
        with Image.open(path) as image:
            assert np.array_equal(np.asarray(image).reshape(5, 7, channels), pixels[0, :, :, :channels])
