"""What observability costs a publish: ``POST /api/v1/events`` through Django's whole handler
(middleware, DRF, the ingest service, Kafka with acks=all) in this process, sequentially, with
tracing off or on (OTLP spans to an endpoint that answers nothing: exporting is off the
request's path either way).

    .venv/bin/python bench/observability_overhead.py [--requests 2000] [--tracing]

Run it against the services alone (``make services``); it creates the ``payment.failed`` type
and a writer key in the database of the settings when they are missing. Prints p50 / p95 /
p99 / mean in milliseconds, and the process's CPU time per request (its threads included),
which other load on the machine disturbs less. Compare runs alternating.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

BODY = {
    "event_type": "payment.failed",
    "user_id": "bench-user",
    "amount": 12.5,
    "data": {"currency": "EUR", "reason": "card_declined"},
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--tracing", action="store_true", help="OTEL_ENABLED=true")
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventhub.settings")
    os.environ["OTEL_ENABLED"] = "true" if args.tracing else "false"
    os.environ.setdefault("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
    os.environ.setdefault("LOG_LEVEL", "INFO")
    import django

    django.setup()
    import logging

    # the log lines are formatted as in production, and thrown away
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.stream = open(os.devnull, "w")  # noqa: SIM115 - for the process's life
    from django.test import Client

    from accounts.services import api_key_create
    from events.models import EventType
    from events.registry import registry

    EventType.objects.get_or_create(
        name="payment.failed", defaults={"schema": {"type": "object"}, "example": {}}
    )
    registry.invalidate()
    key = api_key_create(name="bench overhead", role="writer")[1]
    client = Client(HTTP_HOST="127.0.0.1")
    headers = {"HTTP_X_API_KEY": key}
    body = json.dumps(BODY)
    for _ in range(50):  # warm up: connections, caches, the producer
        client.post("/api/v1/events", body, content_type="application/json", **headers)
    times = []
    cpu_started = time.process_time()
    for _ in range(args.requests):
        started = time.perf_counter()
        response = client.post("/api/v1/events", body, content_type="application/json", **headers)
        times.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 202, response.status_code
    cpu_ms = (time.process_time() - cpu_started) * 1000 / args.requests
    times.sort()
    pick = lambda q: times[min(len(times) - 1, int(q * len(times)))]  # noqa: E731
    print(
        f"tracing {'on ' if args.tracing else 'off'} {args.requests} requests: "
        f"p50 {pick(0.5):.2f} ms, p95 {pick(0.95):.2f} ms, p99 {pick(0.99):.2f} ms, "
        f"mean {statistics.mean(times):.2f} ms; CPU {cpu_ms:.2f} ms per request"
    )


if __name__ == "__main__":
    main()
