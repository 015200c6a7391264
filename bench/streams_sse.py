"""S1: live stream fan-out. ``--clients`` SSE clients (default 100) follow
``/api/v1/stream/events`` on the ASGI server while events are published at ``--rate`` events/s
(default 100) for ``--duration`` s: every client should get every event; prints the
publish -> client latency over all (client, event) pairs (p50 / p95 / p99 / max), what did not
arrive, and the ASGI server's memory (RSS) at the start, its peak and the end.

    .venv/bin/python bench/streams_sse.py [--clients 100 --rate 100 --duration 30]

The whole path runs as ``make up`` runs it, DEBUG off: ``events_publish`` (the REST ingest
service) -> Kafka -> the pipeline consumer (its default batch timeout) -> MongoDB -> the
change stream -> uvicorn -> the clients, which run in a process of their own (raw asyncio
connections) so they do not slow the publisher. Its own topic, consumer group and event type
in the benchmarks' databases (see README.md); removed afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import orjson
import processes
import uvloop

RUN = uuid.uuid4().hex[:8]
os.environ["DJANGO_DEBUG"] = "false"
os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-secret-key-" + "x" * 40)
os.environ.setdefault("KAFKA_TOPIC_EVENTS", f"bench.{RUN}.events")
os.environ.setdefault("PIPELINE_GROUP_ID", f"bench-{RUN}")
os.environ.setdefault("STREAM_MAX_PER_CREDENTIAL", "1000")
sys.path.insert(0, str(processes.ROOT))


async def follow(port: int, key: str, index: int, until: float, out: dict, ready: list) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"GET /api/v1/stream/events?type=bench.* HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"X-API-Key: {key}\r\nAccept: text/event-stream\r\n\r\n".encode()
    )
    await writer.drain()
    status = await reader.readline()
    assert b" 200 " in status, status
    ready.append(index)
    latencies = out.setdefault(str(index), {})
    while time.time() < until:
        try:
            line = await asyncio.wait_for(reader.readline(), until - time.time())
        except TimeoutError:
            break
        if line.startswith(b"data: "):
            event = orjson.loads(line[6:])
            latencies[event["id"]] = time.time() - event["data"]["sent_at"]
    writer.close()


async def clients(port: int, key: str, count: int, seconds: float, result: Path) -> None:
    until = time.time() + seconds
    out: dict = {}
    ready: list = []
    tasks = [asyncio.ensure_future(follow(port, key, i, until, out, ready)) for i in range(count)]
    while len(ready) < count:
        await asyncio.sleep(0.05)
    Path(str(result) + ".ready").write_text("ready")
    await asyncio.gather(*tasks)
    result.write_text(json.dumps(out))


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=100)
    parser.add_argument("--rate", type=float, default=100)
    parser.add_argument("--duration", type=float, default=30)
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--client-mode", nargs=4, metavar=("PORT", "KEY", "SECONDS", "OUT"))
    args = parser.parse_args()
    if args.client_mode:
        port, key, seconds, out = args.client_mode
        uvloop.run(clients(int(port), key, args.clients, float(seconds), Path(out)))
        return

    import django

    django.setup()
    from accounts.roles import Role
    from accounts.services import api_key_create
    from core import kafka, mongo
    from events.models import EventType
    from events.registry import registry
    from events.services import Door, events_publish

    type_name = f"bench.streams_{RUN}"
    EventType.objects.create(name=type_name, schema={"type": "object"}, retention_days=1)
    registry.invalidate()
    kafka.ensure_topics([kafka.TopicSpec(os.environ["KAFKA_TOPIC_EVENTS"], 6)])
    key = api_key_create(name=f"bench streams {RUN}", role=Role.READER)[1]
    print(
        f"S1 {args.clients} SSE clients x {args.rate:.0f} events/s for {args.duration:.0f} s; "
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} before; DEBUG off"
    )
    server = processes.spawn(
        "asgi",
        [
            str(processes.BIN / "uvicorn"),
            "eventhub.asgi:application",
            "--port",
            str(args.port),
            "--lifespan",
            "off",
            "--log-level",
            "warning",
            "--timeout-graceful-shutdown",
            "2",
        ],
    )
    consumer = processes.pipeline_consumer(batch_timeout_ms=200)
    result = Path(tempfile.mkdtemp()) / "latencies.json"
    listen = args.duration + 15
    client_process = None
    try:
        processes.wait_until(lambda: _listening(args.port), timeout=30)
        client_process = subprocess.Popen(
            [
                sys.executable,
                __file__,
                "--clients",
                str(args.clients),
                "--client-mode",
                str(args.port),
                key,
                str(listen),
                str(result),
            ],
            cwd=processes.ROOT,
        )
        assert processes.wait_until(lambda: Path(str(result) + ".ready").exists(), timeout=60), (
            "the clients did not connect"
        )
        memory = [rss_mb(server.pid)]
        server_cpu = processes.cpu_seconds(server.pid)
        ids = []
        started = time.perf_counter()
        total = int(args.rate * args.duration)
        for i in range(total):
            delay = started + i / args.rate - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            envelope = {
                "id": f"{RUN}-{i}",
                "source": "/bench-streams",
                "specversion": "1.0",
                "type": type_name,
                "time": datetime.now(tz=UTC).isoformat(),
                "data": {"n": i, "sent_at": time.time()},
            }
            events_publish(
                envelopes=[envelope], wait=False, door=Door.REST, request_id=f"bench-{RUN}"
            )
            ids.append(envelope["id"])
            if i % int(args.rate) == 0:
                memory.append(rss_mb(server.pid))
        kafka.get_publisher().flush(10)
        clients_cpu = 0.0
        while client_process.poll() is None:
            memory.append(rss_mb(server.pid))
            try:
                clients_cpu = processes.cpu_seconds(client_process.pid)
            except OSError:
                pass
            time.sleep(1)
        server_cpu = processes.cpu_seconds(server.pid) - server_cpu
        received = json.loads(result.read_text())
        latencies = sorted(
            value * 1000 for per_client in received.values() for value in per_client.values()
        )
        missing = sum(len(set(ids) - set(per_client)) for per_client in received.values())
        expected = len(ids) * args.clients
        print(
            f"received {len(latencies):,} of {expected:,} (client, event) pairs; "
            f"missing {missing:,}; clients {len(received)}"
        )
        if latencies:
            pick = lambda q: latencies[min(len(latencies) - 1, int(q * len(latencies)))]  # noqa: E731
            print(
                f"publish -> client: p50 {pick(0.5):.0f} ms, p95 {pick(0.95):.0f} ms, "
                f"p99 {pick(0.99):.0f} ms, max {latencies[-1]:.0f} ms"
            )
        print(
            f"ASGI server CPU {server_cpu:.1f} s over the run "
            f"({server_cpu / max(1, len(latencies)) * 1e6:.0f} us per event sent); the clients' "
            f"process {clients_cpu:.1f} s"
        )
        print(
            f"ASGI server RSS: start {memory[0]:.0f} MB, peak {max(memory):.0f} MB, "
            f"end {memory[-1]:.0f} MB; load {os.getloadavg()[0]:.2f} after"
        )
    finally:
        if client_process is not None and client_process.poll() is None:
            client_process.kill()
        processes.stop(server, timeout=5)
        processes.stop(consumer)
        db = mongo.get_db()
        db[mongo.EVENTS].delete_many({"source": "/bench-streams"})
        db[mongo.METRICS].delete_many({"source": "/bench-streams"})
        EventType.objects.filter(name=type_name).delete()
        kafka.get_admin().delete_topics([os.environ["KAFKA_TOPIC_EVENTS"]])


def _listening(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


if __name__ == "__main__":
    main()
