"""Scaling out: one training run over 1 and 2 devices, and generate over 1 and 2 sampling workers.

Training: images/s of one run with `devices` 1 and 2 (models.distributed: one process per device, the
global batch split over them; on a CPU, gloo processes sharing the cores), after warm-up, on random
data. On a CPU two processes share the same cores, so two "devices" are no faster than one: the
figures are printed as they are. Each device count runs in fresh processes.

Sampling: generate requests/s at the given client counts through a real Redis, API and one, then two,
sampling workers (an untrained DCGAN, as bench/serve.py: speed does not depend on training).

The store: a checkpoint's write, and a cold host's first generate, on local disk and on an S3 bucket.

    python -m bench.scale                                  # 64 px, batch 64, CPU or the first GPUs
    python -m bench.scale --sizes 32 --steps 10 --clients 8 --seconds 5
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
import tempfile
import time
from multiprocessing.queues import SimpleQueue
from pathlib import Path

import boto3
import httpx
import numpy as np
import torch
import torch.multiprocessing as mp

from bench.loadgen import HEADER, run_load
from bench.serve import MODEL_ID, free_port, wait_for, write_model
from bench.train_speed import trainer_images_per_second
from models.devices import pick_device
from models.distributed import Shard, join_group, leave_group, rank_device, rendezvous
from models.networks import NetworkSpec
from models.training import TrainConfig, Trainer
from workers.jobs.multi_device import check_devices, rank_threads
from workers.local.redis_server import start_redis
from workers.shared.object_store import open_store
from workers.shared.storage import Storage

QUIET = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}


def main() -> None:
    args = parse_arguments()
    device = pick_device(args.device)
    print(
        f"Training: one run, batch {args.batch} (global), {args.steps} steps after {args.warmup} of warm-up"
    )
    print(f"on {device.type}, {os.cpu_count()} CPU cores\n")
    print("| size px | devices | images/s | per device |\n|---:|---:|---:|---:|", flush=True)
    for size in args.sizes:
        for devices in args.devices:
            rate = training_images_per_second(device, devices, size, args.batch, args.steps, args.warmup)
            print(f"| {size} | {devices} | {rate:.1f} | {rate / devices:.1f} |", flush=True)

    print(f"\nSampling: generate, {args.sample_size} px, one image per request, {args.seconds:.0f} s a row\n")
    print(HEADER.replace("| server |", "| sampling workers |"))
    for row in sampling_rows(args):
        print(row, flush=True)

    print(f"\nThe store: local disk against an S3 bucket (moto's server here), {args.sample_size} px\n")
    print("| what | local disk, ms | S3 bucket, ms |\n|---|---:|---:|")
    for row in store_rows(args):
        print(row, flush=True)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[64])
    parser.add_argument("--devices", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--batch", type=int, default=64, help="the global batch")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--device", help="cuda or cpu; default: the best there is")
    parser.add_argument("--clients", type=int, nargs="+", default=[8])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--sample-size", type=int, default=64)
    return parser.parse_args()


def training_images_per_second(
    device: torch.device, devices: int, size: int, batch: int, steps: int, warmup: int
) -> float:
    """Rank 0's images/s of the global batch, with all `devices` ranks in fresh spawned processes."""
    check_devices(device, devices)
    context = mp.get_context("spawn")
    results = context.SimpleQueue()
    store = rendezvous(devices) if devices > 1 else None  # held open here until every rank is done
    timing = (size, batch, steps, warmup)
    port = store.port if store else 0
    mp.spawn(_train_rank, args=(devices, port, device.type, timing, results), nprocs=devices)
    return results.get()


def _train_rank(
    rank: int, devices: int, port: int, device_type: str, timing: tuple, results: SimpleQueue
) -> None:
    size, batch, steps, warmup = timing
    device = rank_device(torch.device(device_type), rank)
    torch.set_num_threads(rank_threads(device, devices, None))
    shard = (
        join_group(rendezvous(devices, port), rank, devices, device) if devices > 1 else Shard(device=device)
    )
    try:
        images = np.random.default_rng(0).integers(0, 256, (1024, 3, size, size), dtype=np.uint8)
        config = TrainConfig(network=NetworkSpec(image_size=size, channels=3), batch_size=batch)
        trainer = Trainer(config, images, device=device, shard=shard)
        rate = trainer_images_per_second(trainer, device, batch, steps, warmup)
        if rank == 0:
            results.put(rate)
    finally:
        leave_group()


def sampling_rows(args: argparse.Namespace) -> list[str]:
    """Load rows with one sampling worker, then with a second one started beside it."""
    root = Path(tempfile.mkdtemp(prefix="ganforge-scale-"))
    write_model(root / "data", args.sample_size)
    base, env, processes = start_api(root, {"GANFORGE_DATA_DIR": str(root / "data")})
    generate = f"{base}/v1/models/{MODEL_ID}/generate"
    rows = []
    try:
        for workers in (1, 2):
            processes.append(start_sampling_worker(base, env, workers))
            run_load(generate, {}, 2 * workers, 2)  # warm up: every worker loads the model
            for clients in args.clients:
                rows.append(run_load(generate, {}, clients, args.seconds).row(str(workers)))
    finally:
        stop(processes)
    return rows


def start_api(root: Path, env: dict[str, str]) -> tuple[str, dict[str, str], list[subprocess.Popen]]:
    """A Redis of its own and the API, with `env` on top of this process's: the API's address, the
    environment its workers need, and the processes."""
    redis_port, api_port = free_port(), free_port()
    env = {**os.environ, "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0", **env}
    processes = [start_redis(redis_port, root / "redis", appendonly=False)]
    api = [sys.executable, "-m", "uvicorn", "app.main:app", "--port", str(api_port), "--log-level", "warning"]
    processes.append(subprocess.Popen(api, env=env, **QUIET))
    return f"http://127.0.0.1:{api_port}", env, processes


def start_sampling_worker(base: str, env: dict[str, str], count: int) -> subprocess.Popen:
    """One more sampling worker, returned once /readyz counts `count` of them."""
    worker = subprocess.Popen([sys.executable, "-m", "workers", "--queues", "sampling"], env=env, **QUIET)
    wait_for(f"{base}/readyz", lambda response: response.json()["workers"]["sampling"] >= count)
    return worker


def stop(processes: list[subprocess.Popen]) -> None:
    for process in processes:
        process.terminate()
    for process in processes:
        process.wait(timeout=30)


def store_rows(args: argparse.Namespace) -> list[str]:
    """Publishing a checkpoint (written to disk, then sent to the bucket) and a cold host's first two
    generate requests (a sampling worker and an API with empty caches), on local disk and on an S3
    bucket. The bucket is moto's S3 server on this machine: the figures are the store's protocol and
    copies, without a network's latency."""
    from moto.server import ThreadedMotoServer  # the dev extra: a real S3 API on a loopback port

    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # moto's server logs every request otherwise
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    s3 = {
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "bench",
        "AWS_SECRET_ACCESS_KEY": "bench",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    os.environ.update(s3)
    url = "s3://ganforge-bench/ganforge"
    try:
        boto3.client("s3").create_bucket(Bucket="ganforge-bench")
        root = Path(tempfile.mkdtemp(prefix="ganforge-store-"))
        checkpoint = write_model(root / "writer", args.sample_size)
        local = _milliseconds(lambda: _rewrite(checkpoint))
        bucket = Storage(root / "writer", open_store(url, root / "writer", 2**30))
        bucket.publish_tree(bucket.model_dir(MODEL_ID))  # the model, once: what a training run has done
        remote = _milliseconds(lambda: (_rewrite(checkpoint), bucket.publish(checkpoint)))
        size_mb = checkpoint.stat().st_size / 2**20
        rows = [f"| write a checkpoint ({size_mb:.1f} MB) | {local:.1f} | {remote:.1f} |"]
        cold = {
            "local disk": _first_generates(root / "local", {"GANFORGE_DATA_DIR": str(root / "writer")}),
            "bucket": _first_generates(
                root / "cold", {**s3, "GANFORGE_STORAGE_URL": url, "GANFORGE_DATA_DIR": str(root / "cold")}
            ),
        }
        for index, what in enumerate(("first generate on a cold host", "second generate")):
            rows.append(f"| {what} | {cold['local disk'][index]:.1f} | {cold['bucket'][index]:.1f} |")
        return rows
    finally:
        server.stop()


def _rewrite(checkpoint: Path) -> None:
    """Write the checkpoint's bytes again, as a training run writes a new one (fsync included)."""
    data = checkpoint.read_bytes()
    with checkpoint.open("wb") as file:
        file.write(data)
        file.flush()
        os.fsync(file.fileno())


def _milliseconds(action, repeats: int = 5) -> float:
    """The median of `repeats` timings of `action()`."""
    timings = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        timings.append((time.perf_counter() - start) * 1000)
    return float(np.median(timings))


def _first_generates(root: Path, env: dict[str, str]) -> tuple[float, float]:
    """Milliseconds of the first and second generate request of a fresh API and sampling worker."""
    base, env, processes = start_api(root, env)
    try:
        processes.append(start_sampling_worker(base, env, 1))
        timings = []
        for seed in (1, 2):
            start = time.perf_counter()
            answer = httpx.post(f"{base}/v1/models/{MODEL_ID}/generate", json={"seed": seed}, timeout=120)
            answer.raise_for_status()
            timings.append((time.perf_counter() - start) * 1000)
        return timings[0], timings[1]
    finally:
        stop(processes)


if __name__ == "__main__":
    main()
