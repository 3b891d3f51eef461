"""`python -m workers.hooks`: the webhooks worker. It POSTs queued webhook events and, as RQ's scheduler
for its queue, queues their retries when due. Torch-free; any number may run."""

from __future__ import annotations

import argparse
import logging

from redis import Redis
from rq import SimpleWorker

from workers.shared.serialization import DataSerializer
from workers.shared.settings import get_settings
from workers.shared.webhooks import WEBHOOK_QUEUE

MAINTENANCE_SECONDS = 30


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m workers.hooks", description=__doc__)
    parser.add_argument("--burst", action="store_true", help="exit when the queue is empty")
    parser.add_argument("--name", help="worker name (default: host and pid)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # Each job is one HTTP request, no torch: no child process per job is needed. Maintenance every
    # MAINTENANCE_SECONDS or so (RQ's default: 10 min) is also when a worker whose scheduler found the
    # lock held (by a worker that died, until the lock expires in a minute) takes the scheduling over.
    worker = SimpleWorker(
        [WEBHOOK_QUEUE],
        connection=Redis.from_url(get_settings().redis_url),
        serializer=DataSerializer,
        name=args.name,
        worker_ttl=2 * MAINTENANCE_SECONDS,
        maintenance_interval=MAINTENANCE_SECONDS,
    )
    worker.work(burst=args.burst, with_scheduler=True, logging_level="INFO")


if __name__ == "__main__":
    main()
