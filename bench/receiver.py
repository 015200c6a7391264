"""A minimal, fast webhook receiver for the delivery benchmarks (P4-P6), run as a subprocess.

    .venv/bin/python bench/receiver.py [--silent]

It listens on 127.0.0.1 on a free port, prints the port on its first line of output and
answers every POST with ``200`` at once (HTTP/1.1 keep-alive over a raw asyncio protocol: a
few tens of microseconds per request, so the receiver is never what a benchmark measures).
With ``--silent`` it reads requests and never answers: an endpoint that times out.

For each request it counts the path and, when the body carries ``"sent_at":<unix seconds>``
(the events the latency benchmarks publish), the latency from then to receipt.
``GET /stats`` answers the counts, the latencies (ms) per path and the time of the last
request, ``GET /receipts`` the time each event (by its ``id``) arrived; ``POST /reset`` clears
them. The parent stops it with SIGTERM; it also ends when its parent does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import signal
import time
from collections import defaultdict

SENT_AT = re.compile(rb'"sent_at":\s*([0-9]+(?:\.[0-9]+)?)')
EVENT_ID = re.compile(rb'"id":"([^"]+)"')
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"


class Stats:
    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.count = 0
        self.by_path: dict[str, int] = defaultdict(int)
        self.latencies: dict[str, list[float]] = defaultdict(list)
        self.first_at: float | None = None
        self.last_at: float | None = None
        self.receipts: dict[str, float] = {}  # event id -> time received (timed events)

    def record(self, path: str, body: bytes, now: float) -> None:
        self.count += 1
        self.by_path[path] += 1
        self.first_at = self.first_at or now
        self.last_at = now
        found = SENT_AT.search(body)
        if found:
            self.latencies[path].append(round((now - float(found.group(1))) * 1000, 3))
            event_id = EVENT_ID.search(body)
            if event_id:
                self.receipts[event_id.group(1).decode()] = now

    def as_json(self) -> bytes:
        return json.dumps(
            {
                "count": self.count,
                "by_path": self.by_path,
                "latencies_ms": self.latencies,
                "first_at": self.first_at,
                "last_at": self.last_at,
            }
        ).encode()


class Receiver(asyncio.Protocol):
    """One connection: parse requests as they complete, answer each at once."""

    def __init__(self, stats: Stats, silent: bool) -> None:
        self.stats = stats
        self.silent = silent
        self.buffer = b""
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        if self.silent:
            return  # an endpoint that never answers: the client's timeout ends it
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].decode("latin-1").split("\r\n")
            length = 0
            for line in head[1:]:
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            method, path, _ = head[0].split(" ", 2)
            self.handle(method, path, body)

    def handle(self, method: str, path: str, body: bytes) -> None:
        assert self.transport is not None
        if path in ("/stats", "/receipts"):
            if path == "/stats":
                payload = self.stats.as_json()
            else:
                payload = json.dumps(self.stats.receipts).encode()
            self.transport.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(payload)).encode()
                + b"\r\n\r\n"
                + payload
            )
            return
        if path == "/reset":
            self.stats.reset()
        else:
            self.stats.record(path, body, time.time())
        self.transport.write(OK)


async def serve(silent: bool) -> None:
    stats = Stats()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: Receiver(stats, silent), "127.0.0.1", 0, backlog=1024, reuse_address=True
    )
    print(server.sockets[0].getsockname()[1], flush=True)
    stopped = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stopped.set)
    loop.add_signal_handler(signal.SIGINT, stopped.set)
    parent = os.getppid()
    while not stopped.is_set() and os.getppid() == parent:  # ends with its benchmark
        try:
            await asyncio.wait_for(stopped.wait(), timeout=1)
        except TimeoutError:
            pass
    server.close()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument(
        "--silent", action="store_true", help="never answer (a timing-out endpoint)"
    )
    args = parser.parse_args()
    asyncio.run(serve(args.silent))


if __name__ == "__main__":
    main()
