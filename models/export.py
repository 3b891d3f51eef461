"""A generator as a file that runs without ganforge: ONNX (for onnxruntime) or TorchScript, and the check
that the file computes what PyTorch computes.

The file's function: `z` (N, latent_dim) float32, and for conditional models `label` (N,) int64 (an
index into the model's labels) → `images` (N, C, S, S) float32 in [-1, 1], NCHW, with a dynamic batch
axis. It is the generator in eval mode, as generate runs it; truncation is the caller's (z · ψ).

ONNX goes through torch.export (`dynamo=True`), at a fixed opset so the file does not change with the
torch release; TorchScript through `torch.jit.trace` (deprecated by PyTorch in favour of torch.export,
but still what `torch.jit.load` users need). Both are made from a CPU float32 copy of the generator, so
the file holds no device and no channels-last layout.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import onnxruntime
import torch

from models.networks import Generator
from models.sampling import latents_for_seeds
from workers.shared.export_format import VERIFY_SEEDS, ExportFormat

ONNX_OPSET = 18
INPUT_NAMES = ["z", "label"]
OUTPUT_NAME = "images"


def export_generator(generator: Generator, format: ExportFormat) -> bytes:
    """The generator as an ONNX or TorchScript file's bytes."""
    portable = _cpu_copy(generator)
    inputs = _inputs(portable, batch=2)  # not 1: torch.export would specialise the batch axis to it
    if format == "onnx":
        return _onnx(portable, inputs)
    return _torchscript(portable, inputs)


def run_exported(
    data: bytes, format: ExportFormat, latents: np.ndarray, labels: np.ndarray | None
) -> np.ndarray:
    """The exported file's images for `latents` (N, latent_dim) and `labels` (N,) or None, as a user of
    the file would run it: onnxruntime on the CPU, or `torch.jit.load`."""
    if format == "onnx":
        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        feeds = {"z": latents.astype(np.float32)}
        if labels is not None:
            feeds["label"] = labels.astype(np.int64)
        return session.run([OUTPUT_NAME], feeds)[0]
    with _quiet_jit():
        module = torch.jit.load(io.BytesIO(data), map_location="cpu")
    arguments = [torch.from_numpy(latents).float()]
    if labels is not None:
        arguments.append(torch.from_numpy(labels).long())
    with torch.inference_mode():
        return module(*arguments).numpy()


def verify_export(
    generator: Generator, data: bytes, format: ExportFormat, seeds: Sequence[int] = VERIFY_SEEDS
) -> float:
    """The largest absolute difference between the exported file's images and the generator's own (in
    float32 on the CPU) for the latents of `seeds`, run as one batch."""
    reference = _cpu_copy(generator)
    latents = latents_for_seeds(seeds, generator.spec.latent_dim)
    labels = np.arange(len(seeds)) % generator.spec.num_classes if generator.spec.conditional else None
    with torch.inference_mode():
        expected = reference(latents, torch.from_numpy(labels) if labels is not None else None).numpy()
    exported = run_exported(data, format, latents.numpy(), labels)
    if exported.shape != expected.shape:
        raise ValueError(f"the exported generator returned shape {exported.shape}, not {expected.shape}")
    return float(np.abs(exported.astype(np.float64) - expected).max())


def _cpu_copy(generator: Generator) -> Generator:
    """A float32 copy on the CPU, in eval mode and the default memory layout, made from the weights alone:
    a generator on a GPU is never duplicated there."""
    portable = Generator(generator.spec)
    portable.load_state_dict(generator.state_dict())
    return portable.eval().requires_grad_(False)


def _inputs(generator: Generator, batch: int) -> tuple[torch.Tensor, ...]:
    z = torch.zeros(batch, generator.spec.latent_dim)
    if not generator.spec.conditional:
        return (z,)
    return z, torch.arange(batch) % generator.spec.num_classes


def _onnx(generator: Generator, inputs: tuple[torch.Tensor, ...]) -> bytes:
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings():
        # torch.export's notes on renaming the shared batch axis and on tree specs: nothing to act on.
        warnings.simplefilter("ignore", UserWarning)
        warnings.simplefilter("ignore", FutureWarning)
        program = torch.onnx.export(
            generator,
            inputs,
            dynamo=True,
            opset_version=ONNX_OPSET,
            input_names=INPUT_NAMES[: len(inputs)],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=tuple({0: batch} for _ in inputs),
            external_data=False,
            verbose=False,
        )
    return program.model_proto.SerializeToString()


def _torchscript(generator: Generator, inputs: tuple[torch.Tensor, ...]) -> bytes:
    buffer = io.BytesIO()
    with _quiet_jit():
        torch.jit.save(torch.jit.trace(generator, inputs), buffer)
    return buffer.getvalue()


@contextlib.contextmanager
def _quiet_jit() -> Iterator[None]:
    """Without torch.jit's deprecation notices, one per call: the module docstring says why it is used."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        yield
