"""A1: the analytics endpoints over a large store of events (default 1,000,000 over 7 days),
for 24 h and 7 d windows: p50 / p95 / max per endpoint, through the whole Django stack (the
REST views with authentication, throttling and serialization; DEBUG off).

    .venv/bin/python bench/analytics_queries.py [--events 1000000] [--repeat 20] [--keep]

Uses the benchmarks' own MongoDB and PostgreSQL databases (``eventhub_bench``, see
README.md); the events are stored as the pipeline stores them and counted in the rollups (by
``rollups_rebuild``, as the pipeline would have counted them). With ``--keep`` they stay for
another run (then ``--reuse`` skips the loading; the rollups are computed again).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import processes  # noqa: E402,F401 - the benchmarks' own databases

os.environ["DJANGO_DEBUG"] = "false"
os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-secret-key-" + "x" * 40)
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost")
os.environ.setdefault("THROTTLE_READ_RATE", "100000/s")

import django  # noqa: E402

django.setup()

import pymongo  # noqa: E402
from django.conf import settings  # noqa: E402
from django.test import Client  # noqa: E402

from accounts.roles import Role  # noqa: E402
from accounts.services import api_key_create  # noqa: E402
from analytics.rollups import rollups_rebuild  # noqa: E402
from core import mongo  # noqa: E402
from core.documents import event_document  # noqa: E402

SOURCE = "/bench-analytics"
TYPES = [
    "order.created",
    "order.paid",
    "order.shipped",
    "payment.failed",
    "user.login",
    "user.logout",
    "cart.updated",
    "search.performed",
]


def load(count: int, span: timedelta) -> None:
    rng = random.Random(7)
    db = mongo.get_db()
    now = datetime.now(tz=UTC)
    chunk: list[dict] = []
    started = time.monotonic()
    for i in range(count):
        envelope = {
            "id": uuid.UUID(int=rng.getrandbits(128)).hex,
            "type": rng.choice(TYPES),
            "source": SOURCE if i % 3 else "/bench-analytics/other",
            "subject": f"user-{rng.randrange(20_000)}",
            "severity": rng.choice([1, 2, 3, 4, 5, 7, 9]),
            "time": (now - timedelta(seconds=rng.random() * span.total_seconds())).isoformat(),
            "data": {"amount": rng.randrange(1, 500), "error_code": rng.choice(["E1", "E2", "E3"])},
        }
        chunk.append(event_document(envelope, retention_days=8))
        if len(chunk) == 10_000:
            db[mongo.EVENTS].insert_many(chunk, ordered=False)
            chunk = []
    if chunk:
        db[mongo.EVENTS].insert_many(chunk, ordered=False)
    print(f"loaded {count:,} events in {time.monotonic() - started:.0f} s")


def count_rollups(span: timedelta) -> None:
    started = time.monotonic()
    now = datetime.now(tz=UTC)
    counted = rollups_rebuild(now - span - timedelta(days=1), now)
    print(f"rollups of {counted:,} events computed in {time.monotonic() - started:.0f} s")


def measure(client: Client, key: str, url: str, repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url, HTTP_X_API_KEY=key)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200, (url, response.status_code, response.content[:300])
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    assert not settings.DEBUG
    mongo.ensure_indexes()
    db = mongo.get_db()
    print(
        f"A1 analytics over {args.events:,} events, {os.cpu_count()} cores, load "
        f"{os.getloadavg()[0]:.2f} before, Python {platform.python_version()}, "
        f"MongoDB {db.command('buildInfo')['version']}, pymongo {pymongo.version}, DEBUG off"
    )
    if not args.reuse:
        load(args.events, timedelta(days=7))
    count_rollups(timedelta(days=7))
    key = api_key_create(name="bench analytics", role=Role.READER)[1]
    client = Client()
    base = "/api/v1/analytics"
    endpoints = {
        "summary": f"{base}/summary?since={{w}}",
        "summary field=severity": f"{base}/summary?since={{w}}&field=severity",
        "timeseries 1h": f"{base}/timeseries?since={{w}}&bucket=1h",
        "timeseries 1h type=order.*": f"{base}/timeseries?since={{w}}&bucket=1h&type=order.*",
        "timeseries 1h filter": f"{base}/timeseries?since={{w}}&bucket=1h&filter="
        + '{{"payload.amount":{{"$gt":400}}}}',
        "top-errors": f"{base}/top-errors?since={{w}}",
        "user-activity top 10": f"{base}/user-activity?since={{w}}",
        "user-activity one": f"{base}/user-activity?since={{w}}&subject=user-42",
        "funnel 3 steps": f"{base}/funnel?since={{w}}&steps=user.login,order.created,order.paid",
    }
    print(f"{'endpoint':<30} {'window':>6} {'p50 ms':>9} {'p95 ms':>9} {'max ms':>9}")
    try:
        for window in ("24h", "7d"):
            for name, url in endpoints.items():
                times = measure(client, key, url.format(w=window), args.repeat)
                ordered = sorted(times)  # nearest rank: a few samples do not extrapolate
                p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
                print(
                    f"{name:<30} {window:>6} {statistics.median(times):>9.1f} {p95:>9.1f} "
                    f"{max(times):>9.1f}"
                )
    finally:
        if not args.keep:
            db[mongo.EVENTS].delete_many({"source": {"$regex": f"^{SOURCE}"}})
            db[mongo.METRICS].delete_many({"source": {"$regex": f"^{SOURCE}"}})
    print(f"load {os.getloadavg()[0]:.2f} after")


if __name__ == "__main__":
    main()
