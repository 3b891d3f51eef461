"""`python -m workers --queues training` (or sampling, or both): one long-lived worker process. A worker
serving the sampling queue also serves generate requests (workers.jobs.generate) in a thread."""

from __future__ import annotations

import argparse
import logging
import os
import threading

from redis import Redis

from workers.shared.contract import QUEUES, SAMPLING_QUEUE, SAMPLING_QUEUES
from workers.shared.object_store import StoreMisconfigured, StoreUnavailable
from workers.shared.settings import get_settings


def rq_queues(roles: list[str]) -> list[str]:
    """The RQ queues behind the roles asked for, in priority order: sampling is the sampling queue, then
    the optimisation queue (workers.shared.contract.OPTIMISATION_QUEUE)."""
    return [queue for role in roles for queue in (SAMPLING_QUEUES if role == SAMPLING_QUEUE else (role,))]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers", description=__doc__)
    parser.add_argument(
        "--queues", nargs="+", choices=QUEUES, default=list(QUEUES), help="queues to serve, in priority order"
    )
    parser.add_argument("--device", help="cuda, cuda:1, mps or cpu (default: GANFORGE_DEVICE, else the best)")
    parser.add_argument("--burst", action="store_true", help="exit when the queues are empty")
    parser.add_argument("--name", help="worker name (default: host and pid)")
    args = parser.parse_args(argv)
    if args.device:
        os.environ["GANFORGE_DEVICE"] = args.device
    if args.queues == [SAMPLING_QUEUE]:
        # OpenMP threads that spin between short forward passes take the CPU that the API and Redis
        # need on the same machine (bench/serve.py serves more requests/s when they sleep). Set before
        # torch loads.
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from workers.jobs.generate import GenerateConsumer  # imports torch: after argument parsing
    from workers.jobs.runtime import current_runtime
    from workers.jobs.worker import InProcessWorker

    runtime = current_runtime()
    log = logging.getLogger("ganforge.worker")
    try:
        runtime.storage.store.check()
    except StoreMisconfigured as error:
        raise SystemExit(f"ganforge worker: {error}") from error
    except StoreUnavailable as error:
        log.warning("%s; jobs that need it wait for it", error)
    log.info(
        "serving %s on %s, data in %s",
        ",".join(args.queues),
        runtime.device,
        runtime.storage.store.describe(),
    )
    interactive = args.queues == ["sampling"]  # many short jobs: no log lines per job
    worker = InProcessWorker(
        rq_queues(args.queues),
        connection=Redis.from_url(get_settings().redis_url),
        name=args.name,
        log_job_description=not interactive,
    )
    stop = threading.Event()
    consumer = None
    if SAMPLING_QUEUE in args.queues:
        generate = GenerateConsumer(runtime, worker=worker.name)  # one name for both in /metrics
        consumer = threading.Thread(target=generate.run, args=(stop,), name="generate")
        consumer.start()
    try:
        worker.work(burst=args.burst, logging_level="WARNING" if interactive else "INFO")
    finally:
        stop.set()  # the consumer finishes the batch in hand
        if consumer is not None:
            consumer.join()


if __name__ == "__main__":
    main()
