"""Which device to run on, and whether it runs bf16 natively. Shared by training and sampling."""

from __future__ import annotations

import torch


def pick_device(requested: str | None = None) -> torch.device:
    """`requested` if given, else cuda → mps → cpu."""
    if requested:
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_memory_bytes(device: torch.device) -> int | None:
    """A CUDA device's own memory; None for other devices, whose memory is the host's."""
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).total_memory
    return None


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 autocast where the hardware runs bf16 natively (CUDA with bf16, CPUs with AVX512-BF16/AMX)."""
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    if device.type == "cpu" and cpu_runs_bf16_natively():
        return torch.bfloat16
    return None


def cpu_runs_bf16_natively() -> bool:
    """AVX512-BF16 or AMX. oneDNN also "supports" bf16 on plain AVX512 by converting in software, which
    halves training speed (seen on a Cascade Lake Xeon: 18 vs 36 images/s at 64 px), so that is not enough."""
    capabilities = torch.cpu.get_capabilities()
    return bool(capabilities.get("avx512_bf16") or capabilities.get("amx_bf16"))
