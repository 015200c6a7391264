"""Helpers the tests share (fixtures stay in the conftest files): a reader of Kafka topics,
a real webhook receiver, the test database's URL for subprocesses."""

from __future__ import annotations

import os
import socket
import struct
import threading
import time
import uuid
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from django.conf import settings
from django.db import connection


def pipeline_env(**extra: str) -> dict[str, str]:
    """The environment of a pipeline process a test starts: the test's settings, database,
    topic, consumer group and MongoDB database."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "DATABASE_URL": database_url(),
        "TEST_KAFKA_TOPIC_EVENTS": settings.KAFKA_TOPIC_EVENTS,
        "TEST_PIPELINE_GROUP_ID": settings.PIPELINE_GROUP_ID,
        "TEST_MONGO_DB": settings.MONGO_DB,
        **extra,
    }


def database_url() -> str:
    """The test database's URL, for the processes a test starts (the pipeline, a worker)."""
    params = connection.settings_dict
    return (
        f"postgresql://{params['USER']}@{params['HOST'] or '127.0.0.1'}:"
        f"{params['PORT'] or 5432}/{params['NAME']}"
    )


def _message_event_id(message) -> str:
    """The CloudEvents id of a message: its ``ce_id`` header, else the JSON body's ``id``."""
    import json

    header = dict(message.headers() or []).get("ce_id")
    if header:
        return header.decode()
    try:
        body = json.loads(message.value())
    except (TypeError, ValueError):
        return ""
    return str(body.get("id", "")) if isinstance(body, dict) else ""


def find_in_topic(topic: str, ids: set[str], *, timeout: float = 20.0) -> dict:
    """Messages of ``topic`` whose CloudEvents id is in ``ids``, read from the start by
    a fresh consumer group; returns ``{id: [messages]}`` once every id was seen (or on timeout).
    """
    import time

    from confluent_kafka import Consumer
    from django.conf import settings

    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": f"test-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
            "session.timeout.ms": 6000,
            "heartbeat.interval.ms": 1000,
        }
    )
    consumer.subscribe([topic])
    found: dict[str, list] = {}
    deadline = time.monotonic() + timeout
    quiet_until = None
    try:
        while time.monotonic() < deadline:
            batch = consumer.consume(num_messages=1000, timeout=0.5)
            for message in batch:
                if message.error() is not None:
                    continue
                event_id = _message_event_id(message)
                if event_id in ids:
                    found.setdefault(event_id, []).append(message)
            if set(found) == ids:
                # keep reading briefly so duplicates, if any, are seen too
                quiet_until = quiet_until or time.monotonic() + 1.0
                if not batch and time.monotonic() > quiet_until:
                    break
    finally:
        consumer.close()
    return found


# --- a real webhook receiver ------------------------------------------------------------


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
    reset: bool = False  # read the request, then reset the connection (no answer at all)


class _ReceiverServer(ThreadingHTTPServer):
    daemon_threads = True
    # a backlog as deep as real servers keep (the default, 5, drops connections under load)
    request_queue_size = 512


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
                if reply.reset:
                    # SO_LINGER 0: closing sends a TCP reset instead of an orderly close
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.close_connection = True
                    self.connection.close()
                    return
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

        self.server = _ReceiverServer(("127.0.0.1", 0), Handler)
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


# --- a real OTLP endpoint -----------------------------------------------------------------


@dataclass
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    span_id: str
    parent_span_id: str
    kind: int
    attributes: dict
    links: list[str]


class OtlpReceiver:
    """An OTLP/gRPC trace receiver on loopback, built on OpenTelemetry's own protocol
    definitions (opentelemetry-proto): the exporters of the processes under test send it
    what they would send a collector."""

    def __init__(self) -> None:
        from concurrent import futures

        import grpc
        from opentelemetry.proto.collector.trace.v1 import (
            trace_service_pb2,
            trace_service_pb2_grpc,
        )

        self.spans: list[ReceivedSpan] = []
        self.lock = threading.Lock()
        receiver = self

        class Service(trace_service_pb2_grpc.TraceServiceServicer):
            def Export(self, request, context):  # noqa: N802 - the protocol's naming
                receiver._take(request)
                return trace_service_pb2.ExportTraceServiceResponse()

        self.server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
        trace_service_pb2_grpc.add_TraceServiceServicer_to_server(Service(), self.server)
        self.port = self.server.add_insecure_port("127.0.0.1:0")
        self.server.start()

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _take(self, request) -> None:
        def value(any_value):
            return (
                getattr(any_value, any_value.WhichOneof("value"))
                if any_value.WhichOneof("value")
                else None
            )

        found = []
        for resource_spans in request.resource_spans:
            resource = {a.key: value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    found.append(
                        ReceivedSpan(
                            service=resource.get("service.name", ""),
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            span_id=span.span_id.hex(),
                            parent_span_id=span.parent_span_id.hex(),
                            kind=span.kind,
                            attributes={a.key: value(a.value) for a in span.attributes},
                            links=[link.span_id.hex() for link in span.links],
                        )
                    )
        with self.lock:
            self.spans.extend(found)

    def of_trace(self, trace_id: str) -> list[ReceivedSpan]:
        with self.lock:
            return [s for s in self.spans if s.trace_id == trace_id]

    def close(self) -> None:
        self.server.stop(grace=1)
