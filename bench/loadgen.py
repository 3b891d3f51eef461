"""A small closed-loop load generator: N clients, each sending its next request when the last one is
answered, for a fixed time. Shared by bench/load.py and bench/serve.py.

It uses aiohttp, whose C parts make it several times cheaper per request than httpx: the load generator
shares the CPU with the servers it measures, and with httpx it took most of a core at 32 clients
(about 10 ms of CPU per request), starving whichever server was being measured."""

from __future__ import annotations

import asyncio
import statistics
import time
from dataclasses import dataclass

import aiohttp


@dataclass
class LoadResult:
    clients: int
    seconds: float
    latencies_ms: list[float]
    errors: int
    batch_images: list[int]  # X-Batch-Images of each answer that has it: images in its forward pass

    @classmethod
    def pooled(cls, parts: list[LoadResult]) -> LoadResult:
        """Several runs at the same concurrency as one: their requests, errors and time added up."""
        return cls(
            parts[0].clients,
            sum(part.seconds for part in parts),
            [latency for part in parts for latency in part.latencies_ms],
            sum(part.errors for part in parts),
            [images for part in parts for images in part.batch_images],
        )

    @property
    def requests_per_second(self) -> float:
        return len(self.latencies_ms) / self.seconds

    def percentile(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        if len(self.latencies_ms) == 1:
            return self.latencies_ms[0]
        return statistics.quantiles(self.latencies_ms, n=100, method="inclusive")[int(q) - 1]

    @property
    def mean_batch(self) -> str:
        return f"{statistics.fmean(self.batch_images):.1f}" if self.batch_images else "–"

    def row(self, name: str) -> str:
        return (
            f"| {name} | {self.clients} | {self.requests_per_second:.1f} | {self.percentile(50):.1f} | "
            f"{self.percentile(95):.1f} | {self.percentile(99):.1f} | {self.errors} | {self.mean_batch} |"
        )


HEADER = (
    "| server | clients | requests/s | p50 ms | p95 ms | p99 ms | errors | mean batch |\n"
    "|---|---:|---:|---:|---:|---:|---:|---:|"
)


async def _client(
    http: aiohttp.ClientSession, url: str, body: dict, stop_at: float, result: LoadResult, seed: int
) -> None:
    while time.monotonic() < stop_at:
        started = time.perf_counter()
        try:
            async with http.post(url, json={**body, "seed": seed}) as response:
                content = await response.read()
            ok = response.status == 200 and content.startswith(b"\x89PNG")
        except aiohttp.ClientError:
            ok = False
        if ok:
            result.latencies_ms.append((time.perf_counter() - started) * 1000)
            if "X-Batch-Images" in response.headers:
                result.batch_images.append(int(response.headers["X-Batch-Images"]))
        else:
            result.errors += 1
        seed += 1


async def _run(url: str, body: dict, clients: int, seconds: float, headers: dict[str, str]) -> LoadResult:
    result = LoadResult(clients, seconds, [], 0, [])
    connector = aiohttp.TCPConnector(limit=clients)
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout, headers=headers) as http:
        stop_at = time.monotonic() + seconds
        await asyncio.gather(*(_client(http, url, body, stop_at, result, 1000 * i) for i in range(clients)))
    return result


def run_load(
    url: str, body: dict, clients: int, seconds: float, headers: dict[str, str] | None = None
) -> LoadResult:
    """POST `body` (with a fresh `seed` each time) to `url` from `clients` concurrent clients."""
    return asyncio.run(_run(url, body, clients, seconds, headers or {}))
