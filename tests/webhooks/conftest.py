"""A real HTTP receiver for webhook tests: a threaded server on loopback that records every
request and answers from a script per path (status, headers, delay)."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from core import kafka
from webhooks.sender import reset_sender


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float = field(default_factory=time.monotonic)


@dataclass
class Reply:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    body: bytes = b"ok"


class Receiver:
    def __init__(self) -> None:
        self.received: list[Received] = []
        self.script: dict[str, deque[Reply]] = defaultdict(deque)
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.lock:
                    receiver.received.append(
                        Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                    )
                    script = receiver.script[self.path]
                    reply = script.popleft() if script else Reply()
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except OSError:
                    pass  # the sender gave up (a timeout test)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.server.server_port}{path}"

    def reply(self, path: str, *replies: Reply) -> None:
        with self.lock:
            self.script[path].extend(replies)

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def wait_for(self, count: int, *, path: str | None = None, timeout: float = 20) -> list:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.at(path) if path else list(self.received)
            if len(found) >= count:
                return found
            time.sleep(0.02)
        return self.at(path) if path else list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def dlq_topic(settings, unique_name):
    settings.KAFKA_TOPIC_DLQ = f"{unique_name}.dlq"
    kafka.ensure_topics([kafka.TopicSpec(settings.KAFKA_TOPIC_DLQ, 1)])
    return settings.KAFKA_TOPIC_DLQ


@pytest.fixture(autouse=True)
def fresh_sender():
    """Each test gets a sender made with its own settings."""
    reset_sender()
    yield
    reset_sender()
