"""Load against a running ganforge: N concurrent clients calling generate for a fixed time.

    python -m bench.load --url http://127.0.0.1:8000 --model m_1a2b3c4d5e6f [--clients 1 8 32] [--seconds 10]

Prints requests/s, p50/p95/p99 latency and errors per client count. Zero errors is the bar.
"""

from __future__ import annotations

import argparse

from bench.loadgen import HEADER, run_load


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--model", required=True, help="a model id with a checkpoint")
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--key", help="an API key, if the service has keys")
    args = parser.parse_args()
    headers = {"Authorization": f"Bearer {args.key}"} if args.key else {}
    url = f"{args.url.rstrip('/')}/v1/models/{args.model}/generate"
    print(HEADER)
    for clients in args.clients:
        print(run_load(url, {}, clients, args.seconds, headers).row("ganforge"), flush=True)


if __name__ == "__main__":
    main()
