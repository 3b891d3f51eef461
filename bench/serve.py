"""Serving speed: ganforge's `generate` through its queue beside a hand-rolled in-process FastAPI
endpoint serving the same generator (64 px, one image per request), at 1, 8 and 32 concurrent clients,
measured in one run; then the CPU each process spent per ganforge request, and the peak memory of each
process.

    python -m bench.serve [--clients 1 8 32] [--seconds 10] [--rounds 5] [--size 64]

Each row's seconds are split into alternating slices (hand-rolled, ganforge, hand-rolled, …), so that
both servers see the same share of a shared machine's changing speed; a row pools its slices.

It starts its own Redis, sampling worker and API (and the hand-rolled server) on free ports, with a
fresh data folder holding one untrained DCGAN (base_channels 64): speed does not depend on training.
Like for like: ganforge runs with an API key, so authentication and the per-key rate limit (set high
enough not to refuse, but counting every request) are on the measured path as in a deployment; the
hand-rolled server gets the sampling worker's thread settings (OpenMP threads that sleep between passes).
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import numpy as np

from app.api_keys import new_key
from bench.loadgen import HEADER, LoadResult, run_load
from models.checkpoints import save_checkpoint
from models.networks import NetworkSpec
from models.training import TrainConfig, Trainer
from workers.local.redis_server import start_redis
from workers.shared.contract import TrainingSpec
from workers.shared.layout import checkpoint_path
from workers.shared.storage import ModelManifest, Storage, training_job_id_for, utc_now

MODEL_ID = "m_bench"
KEY, KEY_ENTRY = new_key("user")
AUTHORIZATION = {"Authorization": f"Bearer {KEY}"}
RATE_LIMIT_PER_MINUTE = 10_000_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def write_model(data_dir: Path, size: int) -> Path:
    network = NetworkSpec(image_size=size, channels=3, latent_dim=100, base_channels=64)
    trainer = Trainer(TrainConfig(network=network, batch_size=2), np.zeros((2, 3, size, size), np.uint8))
    storage = Storage(data_dir)
    spec = TrainingSpec(dataset_id="bench", image_size=size, steps=1)
    storage.write_model(
        ModelManifest(
            id=MODEL_ID,
            name="bench",
            training_job_id=training_job_id_for(MODEL_ID),
            created_at=utc_now(),
            spec=spec,
            dataset_id="bench",
            image_size=size,
            channels=3,
            status="completed",
        )
    )
    save_checkpoint(storage.model_dir(MODEL_ID), 0, trainer.state_dict(), keep=1)
    return checkpoint_path(storage.model_dir(MODEL_ID), 0)


def wait_for(url: str, ready=lambda response: response.status_code == 200, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if ready(httpx.get(url)):
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer")


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_memory_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    args = parse_arguments()
    root = Path(tempfile.mkdtemp(prefix="ganforge-bench-"))
    checkpoint = write_model(root / "data", args.size)
    processes, api_port, reference_port = start_servers(root, checkpoint)
    try:
        wait_for(
            f"http://127.0.0.1:{api_port}/readyz", lambda response: response.json()["workers"]["sampling"]
        )
        wait_for(f"http://127.0.0.1:{reference_port}/docs")
        ganforge = f"http://127.0.0.1:{api_port}/v1/models/{MODEL_ID}/generate"
        reference = f"http://127.0.0.1:{reference_port}/generate"
        run_load(ganforge, {}, 2, 2, AUTHORIZATION)  # warm up: load the model, first kernels
        run_load(reference, {}, 2, 2)
        print(
            f"{args.size} px DCGAN (base_channels 64), one image per request, {args.seconds:.0f} s per "
            f"server and row in {args.rounds} alternating slices; ganforge with an API key"
        )
        print(HEADER)
        measured = {name: processes[name].pid for name in ("sampling worker", "ganforge API", "redis")}
        measured["load generator"] = os.getpid()
        cpu_rows = [measure_row(args, clients, ganforge, reference, measured) for clients in args.clients]
        print("\nCPU per ganforge request, ms (from /proc, user + system)\n")
        print("| clients | " + " | ".join(measured) + " |\n|---:|" + "---:|" * len(measured))
        print("\n".join(cpu_rows))
        print("\n| process | peak memory (VmHWM) MB |\n|---|---:|")
        for name, process in processes.items():
            print(f"| {name} | {peak_memory_mb(process.pid):.0f} |")
    finally:
        for process in processes.values():
            process.terminate()
        for process in processes.values():
            process.wait(timeout=30)


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=10, help="per server and row")
    parser.add_argument(
        "--rounds", type=int, default=5, help="alternating slices per row, which share the seconds"
    )
    parser.add_argument("--size", type=int, default=64)
    return parser.parse_args()


def start_servers(root: Path, checkpoint: Path) -> tuple[dict[str, subprocess.Popen], int, int]:
    """Redis, a sampling worker and the API on `root`'s data folder, and the hand-rolled server on
    `checkpoint`: the processes by name, the API's port and the hand-rolled server's."""
    redis_port, api_port, reference_port = free_port(), free_port(), free_port()
    env = {
        **os.environ,
        "REDIS_URL": f"redis://127.0.0.1:{redis_port}/0",
        "GANFORGE_DATA_DIR": str(root / "data"),
        "GANFORGE_API_KEYS": KEY_ENTRY,
        "GANFORGE_REQUESTS_PER_MINUTE": str(RATE_LIMIT_PER_MINUTE),
        "OMP_WAIT_POLICY": "PASSIVE",  # what `python -m workers --queues sampling` sets for itself
    }
    python = sys.executable
    processes = {"redis": start_redis(redis_port, root / "redis", appendonly=False)}
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes["sampling worker"] = subprocess.Popen(
        [python, "-m", "workers", "--queues", "sampling"], env=env, **quiet
    )
    processes["ganforge API"] = subprocess.Popen(
        [python, "-m", "uvicorn", "app.main:app", "--port", str(api_port), "--log-level", "warning"],
        env=env,
        **quiet,
    )
    processes["hand-rolled"] = subprocess.Popen(
        [
            python,
            "-m",
            "uvicorn",
            "bench.handrolled:app",
            "--port",
            str(reference_port),
            "--log-level",
            "warning",
        ],
        env={**env, "HANDROLLED_CHECKPOINT": str(checkpoint)},
        **quiet,
    )
    return processes, api_port, reference_port


def measure_row(
    args: argparse.Namespace, clients: int, ganforge: str, reference: str, measured: dict[str, int]
) -> str:
    """Print both servers' rows at `clients`; return the row of CPU per ganforge request of each of
    the `measured` processes."""
    # Alternating slices: the servers share whatever the machine's speed does meanwhile.
    slice_seconds = args.seconds / args.rounds
    references, results, cpu = [], [], dict.fromkeys(measured, 0.0)
    for _ in range(args.rounds):
        references.append(run_load(reference, {}, clients, slice_seconds))
        before = {name: cpu_seconds(pid) for name, pid in measured.items()}
        results.append(run_load(ganforge, {}, clients, slice_seconds, AUTHORIZATION))
        for name, pid in measured.items():
            cpu[name] += cpu_seconds(pid) - before[name]
    result = LoadResult.pooled(results)
    print(LoadResult.pooled(references).row("hand-rolled in-process"))
    print(result.row("ganforge via queue"), flush=True)
    per_request = [seconds * 1000 / max(len(result.latencies_ms), 1) for seconds in cpu.values()]
    return f"| {clients} | " + " | ".join(f"{ms:.2f}" for ms in per_request) + " |"


if __name__ == "__main__":
    main()
