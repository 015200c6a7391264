"""P6: isolation of a dead endpoint. P5's measurement with 10 subscriptions (each event goes to
one of them through its filter), once with all 10 endpoints answering and once with one of
them (10 % of the traffic) pointing at an endpoint that never answers within the 5 s timeout.

    .venv/bin/python bench/p6_isolation.py [--rate 200 --duration 60] [P5's stack options]

Compares the p99 of the same 9 healthy endpoints in both runs; the ratio is the price the
healthy endpoints pay for the dead one. Every subscription has ``timeout_seconds=5`` and the
default retry schedule (the sweeper queues the first retry 5 s after a timeout).
"""

from __future__ import annotations

import argparse
import math

from p5_latency import Endpoint, add_stack_arguments, measure_latency, summary
from processes import percentile

SUBSCRIPTIONS = 10


def main() -> None:
    parser = argparse.ArgumentParser()
    add_stack_arguments(parser)
    args = parser.parse_args()
    options = {
        "rate": args.rate,
        "duration": args.duration,
        "workers": args.workers,
        "threads": args.threads,
        "task_batch": args.task_batch,
        "batch_timeout_ms": args.batch_timeout_ms,
        "timeout_seconds": 5,
        "label": "p6",
        "fetch_wait_ms": args.what_if_fetch_wait_ms,
    }
    paths = [f"/hook/{k}" for k in range(SUBSCRIPTIONS)]
    healthy_paths = paths[:-1]

    without = measure_latency(endpoints=[Endpoint(p) for p in paths], **options)
    with_dead = measure_latency(
        endpoints=[Endpoint(p, silent=(p == paths[-1])) for p in paths], **options
    )

    print(
        f"{args.rate:.0f} events/s for {args.duration:.0f} s, {SUBSCRIPTIONS} subscriptions "
        f"(one per event), {args.workers} worker(s) x {args.threads} threads, batch timeout "
        f"{args.batch_timeout_ms} ms"
    )
    base = without.healthy(healthy_paths)
    hurt = with_dead.healthy(healthy_paths)
    print(f"without the dead endpoint, 9 healthy endpoints: {summary(base)}")
    print(f"with the dead endpoint,    9 healthy endpoints: {summary(hurt)}")
    print(f"  rows, without: {without.status_counts}; with: {with_dead.status_counts}")
    for name, result in (("without", without), ("with", with_dead)):
        print(
            f"  {name}: the machine {result.machine_busy:.0%} busy while publishing, this "
            f"benchmark's processes {result.ours_cpu:.2f} cores"
        )
    ratio = percentile(hurt, 0.99) / percentile(base, 0.99)
    shown = (
        "unbounded (over 1 % of the healthy deliveries had not arrived 30 s after the last publish)"
        if math.isinf(ratio)
        else f"{ratio:.2f}x"
    )
    print(f"healthy p99 with / without: {shown}")


if __name__ == "__main__":
    main()
