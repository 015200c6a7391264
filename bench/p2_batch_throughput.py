"""P2: ``POST /api/v1/events/batch`` events/s, next to raw confluent-kafka producing the same
serialized envelopes in the same run; prints both and the ratio.

    .venv/bin/python bench/p2_batch_throughput.py [--key ehk_...] [--events 100000]

The HTTP side sends batches of 1000 over a few keep-alive connections; the raw side produces
the same envelopes (acks=all, idempotent, the same topic) from this process.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import urllib3
from confluent_kafka import Producer

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import figures  # noqa: E402


def envelopes(n: int, run: str) -> list[dict]:
    return [
        {
            "specversion": "1.0",
            "id": f"{run}-{i}",
            "source": "/bench",
            "type": "payment.failed",
            "time": "2026-11-20T10:00:00Z",
            "subject": f"user-{i % 1000}",
            "data": {"amount": i % 500, "currency": "EUR", "reason": "card_declined"},
        }
        for i in range(n)
    ]


def http_rate(url: str, key: str, items: list[dict], batch: int, clients: int) -> float:
    pool = urllib3.PoolManager(maxsize=clients)
    bodies = [json.dumps(items[i : i + batch]).encode() for i in range(0, len(items), batch)]
    headers = {"X-API-Key": key, "Content-Type": "application/json"}

    def send(body: bytes) -> int:
        response = pool.request("POST", url, body=body, headers=headers, timeout=60)
        result = json.loads(response.data)
        if response.status != 200:
            raise SystemExit(f"batch failed: {response.status} {result}")
        return result["accepted"]

    started = time.perf_counter()
    with ThreadPoolExecutor(clients) as executor:
        accepted = sum(executor.map(send, bodies))
    seconds = time.perf_counter() - started
    if accepted != len(items):
        raise SystemExit(f"only {accepted} of {len(items)} accepted")
    return len(items) / seconds


def raw_rate(bootstrap: str, topic: str, items: list[dict]) -> float:
    producer = Producer(
        {
            "bootstrap.servers": bootstrap,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 2,
            "compression.type": "lz4",
            "queue.buffering.max.messages": 500000,
        }
    )
    values = [json.dumps(item, separators=(",", ":")).encode() for item in items]
    keys = [item["subject"].encode() for item in items]
    started = time.perf_counter()
    for value, key in zip(values, keys, strict=True):
        while True:
            try:
                producer.produce(topic, value, key=key)
                break
            except BufferError:
                producer.poll(0.01)
        producer.poll(0)
    producer.flush(120)
    return len(items) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/api/v1/events/batch")
    parser.add_argument("--key", help="a writer API key (default: one made for the run)")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument(
        "--bootstrap", default=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    parser.add_argument("--topic", default=os.environ.get("KAFKA_TOPIC_EVENTS", "eventhub.events"))
    args = parser.parse_args()

    remove = None
    if args.key is None:
        args.key, _, remove = figures.writer_credentials()
    try:
        items = envelopes(args.events, uuid.uuid4().hex[:8])
        http = http_rate(args.url, args.key, items, args.batch, args.clients)
    finally:
        if remove is not None:
            remove()
    raw = raw_rate(args.bootstrap, args.topic, envelopes(args.events, uuid.uuid4().hex[:8]))
    print(f"P2 {args.events} events, batches of {args.batch}, {args.clients} HTTP clients")
    print(f"POST /events/batch: {http:10.0f} events/s")
    print(f"raw confluent-kafka: {raw:9.0f} events/s")
    print(f"ratio:              {http / raw:10.1%}")
    figures.emit(
        "P2",
        {
            "events": args.events,
            "batch": args.batch,
            "clients": args.clients,
            "http_per_s": round(http),
            "raw_per_s": round(raw),
            "ratio": round(http / raw, 3),
        },
    )


if __name__ == "__main__":
    main()
