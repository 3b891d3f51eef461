"""Training speed: ganforge's training step beside a plain reference step, measured in one run.

The reference is the DCGAN paper's loop written plainly, as in pytorch/examples dcgan/main.py: fp32, a
DataLoader over float images, a sigmoid discriminator with nn.BCELoss. Both use the same architecture
(models.networks), batch size and data; ganforge's step adds bf16 autocast where the device runs it
natively (CUDA with bf16, CPUs with AVX512-BF16 or AMX), channels-last, fused Adam (CUDA, CPU), no
weight gradients for D during G's update, and the uint8 data set kept on the device. Each measurement
runs in a fresh process of its own, whose peak memory is the second table.

A recipe (--architecture, --augment, --r1-gamma, --recipe-base-channels) adds a column: ganforge's
auto step with that recipe, and its step time over the default recipe's. Time at least 32 steps with
R1 on: it runs on every 16th D update only. `--augment ada` times ADA's start, p = 0, where nothing is
augmented; `--augment translation,cutout,color` times its most expensive point, p = 1.

    python -m bench.train_speed                 # 32 and 64 px, batch 64, on the best device
    python -m bench.train_speed --sizes 64 --steps 30 --device cpu
    python -m bench.train_speed --sizes 32 --steps 32 --architecture resnet --recipe-base-channels 32
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from models.devices import pick_device
from models.networks import Discriminator, Generator, NetworkSpec
from models.training import TrainConfig, Trainer
from workers.shared.recipes import ARCHITECTURES, AUGMENT_POLICIES


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def in_fresh_process(function: Callable[..., Any], *arguments: Any) -> tuple[Any, str]:
    """`function(*arguments)` run in a process of its own, and that process's peak memory: its peak RSS in
    MB, and on CUDA also the peak GPU memory torch allocated. A fresh process per measurement, so one
    measurement's memory does not carry into the next one's figure (RSS only ever grows)."""
    spawn = multiprocessing.get_context("spawn")  # no fork: a forked child of a torch parent can hang
    with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
        return pool.submit(_with_peak_memory, function, *arguments).result()


def _with_peak_memory(function: Callable[..., Any], *arguments: Any) -> tuple[Any, str]:
    result = function(*arguments)
    peak = f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f}"  # Linux: KiB
    if torch.cuda.is_available():
        peak += f" (CUDA {torch.cuda.max_memory_allocated() / 2**20:.0f})"
    return result, peak


def reference_images_per_second(
    images: np.ndarray, spec: NetworkSpec, batch: int, steps: int, warmup: int, device: torch.device
) -> float:
    """pytorch/examples dcgan/main.py's loop: fp32, DataLoader, BCELoss on sigmoid outputs."""
    data = TensorDataset(torch.from_numpy(images).float().div(127.5).sub(1))
    loader = DataLoader(data, batch_size=batch, shuffle=True, drop_last=True)
    net_g = Generator(spec).to(device)
    net_d = nn.Sequential(Discriminator(spec), nn.Sigmoid()).to(device)
    criterion = nn.BCELoss()
    optimizer_d = torch.optim.Adam(net_d.parameters(), lr=2e-4, betas=(0.5, 0.999))
    optimizer_g = torch.optim.Adam(net_g.parameters(), lr=2e-4, betas=(0.5, 0.999))

    def step(real: torch.Tensor) -> None:
        real = real.to(device)
        ones, zeros = torch.ones(batch, device=device), torch.zeros(batch, device=device)
        net_d.zero_grad()
        error_real = criterion(net_d(real), ones)
        error_real.backward()
        fake = net_g(torch.randn(batch, spec.latent_dim, device=device))
        error_fake = criterion(net_d(fake.detach()), zeros)
        error_fake.backward()
        optimizer_d.step()
        net_g.zero_grad()
        criterion(net_d(fake), ones).backward()
        optimizer_g.step()

    def batches():
        while True:
            yield from loader

    stream = batches()
    for _ in range(warmup):
        step(next(stream)[0])
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        step(next(stream)[0])
    synchronize(device)
    return steps * batch / (time.perf_counter() - started)


def ganforge_images_per_second(
    images: np.ndarray,
    spec: NetworkSpec,
    batch: int,
    steps: int,
    warmup: int,
    device: torch.device,
    precision: str,
    compile: bool = False,
    recipe: dict[str, Any] | None = None,
) -> tuple[float, float]:
    """Images/s after warm-up, and the first step's seconds (torch.compile's start-up when compiling).
    `recipe`: TrainConfig fields beyond the default recipe (augment, r1_gamma)."""
    config = TrainConfig(
        network=spec, batch_size=batch, precision=precision, compile=compile, **(recipe or {})
    )
    trainer = Trainer(config, images, None, device)
    started = time.perf_counter()
    trainer.train_step()
    synchronize(device)
    first_step = time.perf_counter() - started
    return trainer_images_per_second(trainer, device, batch, steps, warmup), first_step


def trainer_images_per_second(
    trainer: Trainer, device: torch.device, batch: int, steps: int, warmup: int
) -> float:
    """Images/s of `steps` training steps of `batch` images, after `warmup` steps."""
    for _ in range(warmup):
        trainer.train_step()
    synchronize(device)
    started = time.perf_counter()
    for _ in range(steps):
        trainer.train_step()
    synchronize(device)
    return steps * batch / (time.perf_counter() - started)


def main() -> None:
    args = parse_arguments()
    device = pick_device(args.device)
    recipe = {"augment": args.augment, "r1_gamma": args.r1_gamma}
    recipe_network = {"architecture": args.architecture, "base_channels": args.recipe_base_channels}
    with_recipe = (*recipe_network.values(), *recipe.values()) != ("dcgan", 64, "none", 0.0)

    print(
        f"device: {device}, torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch}"
    )
    columns = ["size", "reference (fp32, DataLoader) img/s", "ganforge fp32 img/s", "ganforge auto img/s"]
    if args.compile:
        columns += ["ganforge auto + compile img/s", "compile start-up s"]
    if with_recipe:
        described = ", ".join(f"{key} {value}" for key, value in (recipe_network | recipe).items())
        columns += [f"recipe ({described}) auto img/s", "recipe step time / auto"]
    print("| " + " | ".join([*columns, "auto dtype", "best ratio"]) + " |")
    print("|" + "---:|" * (len(columns) + 2))
    recipe_spec = (recipe_network, recipe) if with_recipe else None
    memory_rows = [measure_size(args, size, device, recipe_spec) for size in args.sizes]
    print(
        "\nPeak memory of each measurement's own process, MB (RSS; on CUDA also the GPU memory allocated)\n"
    )
    variants = (
        ["reference", "ganforge fp32", "ganforge auto"]
        + (["ganforge auto + compile"] if args.compile else [])
        + (["recipe auto"] if with_recipe else [])
    )
    print("| size | " + " | ".join(variants) + " |\n|---:|" + "---:|" * len(variants))
    print("\n".join(memory_rows))


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device")
    parser.add_argument("--compile", action="store_true", help="also time torch.compile (minutes to compile)")
    parser.add_argument("--architecture", choices=ARCHITECTURES, default="dcgan", help="recipe column")
    parser.add_argument("--augment", choices=AUGMENT_POLICIES, default="none", help="recipe column")
    parser.add_argument("--r1-gamma", type=float, default=0.0, help="recipe column (lazy R1)")
    parser.add_argument("--recipe-base-channels", type=int, default=64, help="recipe column")
    return parser.parse_args()


def measure_size(
    args: argparse.Namespace,
    size: int,
    device: torch.device,
    recipe: tuple[dict[str, Any], dict[str, Any]] | None,
) -> str:
    """Print the speed row of `size`; return its memory row. `recipe`: the recipe column's NetworkSpec
    and TrainConfig fields, or None for no recipe column."""
    spec = NetworkSpec(image_size=size, channels=3, latent_dim=100, base_channels=64)
    images = np.random.default_rng(0).integers(0, 256, (max(1024, 4 * args.batch), 3, size, size), np.uint8)
    timing = (args.batch, args.steps, args.warmup, device)
    reference, reference_memory = in_fresh_process(reference_images_per_second, images, spec, *timing)
    (plain, _), plain_memory = in_fresh_process(ganforge_images_per_second, images, spec, *timing, "fp32")
    (auto, _), auto_memory = in_fresh_process(ganforge_images_per_second, images, spec, *timing, "auto")
    cells = [f"{reference:.1f}", f"{plain:.1f}", f"{auto:.1f}"]
    memory = [reference_memory, plain_memory, auto_memory]
    best = auto
    if args.compile:
        (compiled, start_up), compiled_memory = in_fresh_process(
            ganforge_images_per_second, images, spec, *timing, "auto", True
        )
        cells += [f"{compiled:.1f}", f"{start_up:.0f}"]
        memory.append(compiled_memory)
        best = max(best, compiled)
    if recipe is not None:
        network, fields = recipe
        (recipe_speed, _), recipe_memory = in_fresh_process(
            ganforge_images_per_second, images, replace(spec, **network), *timing, "auto", False, fields
        )
        cells += [f"{recipe_speed:.1f}", f"{auto / recipe_speed:.2f}×"]
        memory.append(recipe_memory)
    dtype = str(Trainer(TrainConfig(network=spec), images[:1], None, device).dtype or "fp32")
    print(f"| {size} | " + " | ".join(cells) + f" | {dtype} | {best / reference:.2f}× |", flush=True)
    return f"| {size} | " + " | ".join(memory) + " |"


if __name__ == "__main__":
    main()
