"""`ganforge watch JOB_ID`: a progress bar for a training job, fed by its server-sent events."""

from __future__ import annotations

import argparse
import json
import os
import sys

import httpx
from tqdm import tqdm

from app.security import ROLES, new_key


def watch(base_url: str, job_id: str) -> int:
    """Follow the job until it finishes; exit status 0 when it completed."""
    with tqdm(unit="step", dynamic_ncols=True) as bar:
        url = f"{base_url.rstrip('/')}/v1/training-jobs/{job_id}/events"
        with httpx.stream("GET", url, timeout=None) as stream:
            if stream.status_code != 200:
                stream.read()
                print(f"{stream.status_code}: {stream.text}", file=sys.stderr)
                return 1
            event: dict = {}
            for line in stream.iter_lines():
                if not line.startswith("data: "):
                    continue
                event = json.loads(line.removeprefix("data: "))
                bar.total = event.get("steps") or bar.total
                bar.n = event.get("step", 0)
                if event.get("loss_d") is not None:
                    bar.set_postfix(loss_d=f"{event['loss_d']:.3f}", loss_g=f"{event['loss_g']:.3f}")
                phase = event.get("phase")  # after the GAN: the inversion encoder's training
                bar.set_description(
                    f"{phase} {event.get('encoder_step', 0)}/{event.get('encoder_steps')}"
                    if phase and event.get("status") == "running"
                    else event.get("status", "")
                )
                bar.refresh()
    print(f"{job_id}: {event.get('status')}" + (f" ({event['error']})" if event.get("error") else ""))
    return 0 if event.get("status") == "completed" else 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="ganforge", description="ganforge command line")
    parser.add_argument(
        "--url",
        default=os.environ.get("GANFORGE_URL", "http://127.0.0.1:8000"),
        help="the API's address (default: $GANFORGE_URL, else http://127.0.0.1:8000)",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    watch_parser = commands.add_parser("watch", help="show a training job's progress until it finishes")
    watch_parser.add_argument("job_id")
    key_parser = commands.add_parser("new-key", help="make an API key and its GANFORGE_API_KEYS entry")
    key_parser.add_argument("--role", choices=ROLES, default="user")
    args = parser.parse_args(argv)
    if args.command == "new-key":
        key, entry = new_key(args.role)
        print(f"key (give it to the client; it is not stored): {key}")
        print(f"entry for GANFORGE_API_KEYS (comma-separate several): {entry}")
        return 0
    return watch(args.url, args.job_id)


if __name__ == "__main__":
    sys.exit(main())
