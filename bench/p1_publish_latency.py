"""P1: single-event ``POST /api/v1/events`` latency at a fixed request rate (open loop).

    .venv/bin/python bench/p1_publish_latency.py --rate 500 --duration 60 --key ehk_...

Requests are sent on a fixed schedule whether or not earlier ones have finished, and each
latency is measured from its scheduled send time, so a slow server cannot hide its queueing
(no coordinated omission). Keep-alive HTTP/1.1 connections over raw asyncio streams keep the
generator cheap, since it shares the machine's two cores with the server.
Prints p50 / p95 / p99 / max latency, the achieved rate and the errors.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from urllib.parse import urlsplit

BODY = {
    "event_type": "payment.failed",
    "user_id": "bench-user",
    "amount": 12.5,
    "data": {"currency": "EUR", "reason": "card_declined"},
}


def request_bytes(host: str, port: int, path: str, key: str) -> bytes:
    body = json.dumps(BODY).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nX-API-Key: {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def run(url: str, key: str, rate: float, duration: float, connections: int) -> None:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    payload = request_bytes(host, port, parts.path, key)
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        while True:
            scheduled = await queue.get()
            if scheduled is None:
                writer.close()
                return
            try:
                writer.write(payload)
                status = await read_response(reader)
                if status != 202:
                    errors[str(status)] = errors.get(str(status), 0) + 1
            except (OSError, asyncio.IncompleteReadError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                reader, writer = await asyncio.open_connection(host, port)
            latencies.append(time.perf_counter() - scheduled)

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    await asyncio.sleep(0.5)  # connections open before the clock starts
    interval = 1.0 / rate
    total = int(rate * duration)
    start = time.perf_counter()
    for i in range(total):
        scheduled = start + i * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(scheduled)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start

    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000

    print(
        f"P1 POST {parts.path}: {rate:.0f} req/s scheduled for {duration:.0f} s, "
        f"{connections} connections"
    )
    print(f"requests: {len(latencies)} in {elapsed:.1f} s ({len(latencies) / elapsed:.0f} req/s)")
    print(
        f"latency ms: p50 {pct(50):.1f}  p95 {pct(95):.1f}  p99 {pct(99):.1f}  "
        f"max {ordered[-1] * 1000:.1f}  mean {statistics.mean(ordered) * 1000:.1f}"
    )
    print(f"errors: {sum(errors.values())} {errors if errors else ''}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", default="http://127.0.0.1:8000/api/v1/events")
    parser.add_argument("--key", required=True, help="a writer API key (manage.py create_api_key)")
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--connections", type=int, default=64)
    args = parser.parse_args()
    asyncio.run(run(args.url, args.key, args.rate, args.duration, args.connections))


if __name__ == "__main__":
    main()
