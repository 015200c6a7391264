"""A first run that shows webhooks succeed: the demo data, the demo traffic and a local demo
receiver (``seed_demo``, ``demo_traffic`` and ``demo_receiver``; ``make up`` runs the first and
starts the last). For local use only.

The receiver is what a subscriber would write: it checks each webhook's Standard Webhooks
signature against the valid secrets of the subscriptions that point at it (read from the
database, as a subscriber keeps the secret shown once) and answers 200 with what it found, or
401 when the signature does not verify. ``/status/<code>`` answers ``<code>`` without checking
anything, to watch retries and dead letters; ``GET /`` shows the last webhooks received.
"""

from __future__ import annotations

import json
import logging
import random
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from cachetools import TTLCache
from django.conf import settings
from django.db import connection

from eventhub_client import WebhookVerificationError, verify_webhook
from events.envelope import from_flat
from events.services import Door, PublishOutcome, events_publish
from subscriptions.models import Subscription

logger = logging.getLogger(__name__)

DEMO_SOURCE = "/demo"
DEMO_PATH = "/hooks/billing"
SECRETS_SECONDS = 5.0
STATUS_PATH = re.compile(r"^/status/([1-5][0-9]{2})$")

EVENT_TYPES: dict[str, dict[str, Any]] = {
    "payment.failed": {
        "description": "A payment attempt was declined or errored.",
        "schema": {
            "type": "object",
            "required": ["amount", "currency"],
            "properties": {
                "amount": {"type": "number", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "reason": {"type": "string"},
            },
        },
        "example": {"amount": 42.5, "currency": "EUR", "reason": "card_declined"},
    },
    "order.created": {
        "description": "A customer placed an order.",
        "schema": {
            "type": "object",
            "required": ["order_id", "total"],
            "properties": {"order_id": {"type": "string"}, "total": {"type": "number"}},
        },
        "example": {"order_id": "ord_1001", "total": 99.0},
    },
    "user.logged_in": {
        "description": "A user signed in.",
        "schema": {"type": "object", "properties": {"ip": {"type": "string"}}},
        "example": {"ip": "203.0.113.7"},
    },
}


def receiver_url(path: str = DEMO_PATH, port: int | None = None) -> str:
    port = settings.DEMO_RECEIVER_PORT if port is None else port
    return f"http://127.0.0.1:{port}{path}"


def demo_event(rng: random.Random, event_type: str) -> dict[str, Any]:
    """An event of a demo type in the flat form producers send, with varied data."""
    user = f"user-{rng.randint(1, 12)}"
    if event_type == "payment.failed":
        data = {
            "amount": round(rng.uniform(2, 250), 2),
            "currency": rng.choice(["EUR", "USD", "GBP"]),
            "reason": rng.choice(["card_declined", "insufficient_funds", "expired_card"]),
        }
        severity = rng.choice([5, 7, 8])
    elif event_type == "order.created":
        data = {"order_id": f"ord_{rng.randint(1000, 9999)}", "total": round(rng.uniform(5, 400))}
        severity = 2
    else:
        data = {"ip": f"203.0.113.{rng.randint(1, 254)}"}
        severity = 1
    return {"event_type": event_type, "user_id": user, "severity": severity, "data": data}


def demo_traffic(*, count: int, seed: int | None = None) -> list[tuple[dict, PublishOutcome]]:
    """Publish ``count`` demo events through the ingest service, as the REST API does (schema,
    idempotency, Kafka with acks=all); returns each event with its outcome."""
    rng = random.Random(seed)
    types = list(EVENT_TYPES)
    envelopes = [
        from_flat(demo_event(rng, types[n % len(types)]), default_source=DEMO_SOURCE)
        for n in range(count)
    ]
    # counted as the REST door's: the same checks and path as a producer's POST /events
    outcomes = events_publish(
        envelopes=envelopes, wait=True, door=Door.REST, request_id=f"demo-{uuid.uuid4()}"
    )
    return list(zip(envelopes, outcomes, strict=True))


class Receipts:
    """What the receiver got: counts by answer, the last few webhooks."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_status: dict[int, int] = {}
        self.last: list[dict[str, Any]] = []

    def add(self, record: dict[str, Any]) -> None:
        with self.lock:
            self.by_status[record["status"]] = self.by_status.get(record["status"], 0) + 1
            self.last = [record, *self.last[:19]]


class DemoReceiver(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), ReceiverHandler)
        self.receipts = Receipts()
        # the secrets found per URL, read again after SECRETS_SECONDS (a rotated secret's
        # predecessor stays valid longer than that), so a webhook costs no query
        self.secrets: TTLCache = TTLCache(maxsize=1000, ttl=SECRETS_SECONDS)
        self.secrets_lock = threading.Lock()

    def secrets_for(self, url: str) -> list[str]:
        with self.secrets_lock:
            found = self.secrets.get(url)
        if found is None:
            try:
                found = [
                    secret
                    for subscription in Subscription.objects.filter(url=url).prefetch_related(
                        "secrets"
                    )
                    for secret in subscription.valid_secrets()
                ]
            finally:
                connection.close()  # this thread ends with its connection
            if found:  # a subscription made next is found at once
                with self.secrets_lock:
                    self.secrets[url] = found
        return found


class ReceiverHandler(BaseHTTPRequestHandler):
    server: DemoReceiver
    protocol_version = "HTTP/1.1"  # keep-alive: the sender reuses its connections

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        record: dict[str, Any] = {
            "at": time.time(),
            "path": self.path,
            "webhook_id": self.headers.get("webhook-id") or self.headers.get("ce-id"),
        }
        forced = STATUS_PATH.match(self.path)
        if forced:
            status, detail = int(forced.group(1)), "answered as the path asks"
        else:
            status, detail = self._verify(body)
        record.update(status=status, detail=detail)
        try:
            record["type"] = json.loads(body).get("type")
        except (ValueError, AttributeError):
            record["type"] = self.headers.get("ce-type")
        self.server.receipts.add(record)
        logger.info("demo receiver: %s", json.dumps(record))
        answer = json.dumps({"received": status < 300, "detail": detail}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def _verify(self, body: bytes) -> tuple[int, str]:
        url = receiver_url(self.path.split("?")[0], self.server.server_port)
        secrets = self.server.secrets_for(url)
        if not secrets:
            return 404, f"no subscription points at {url}"
        try:
            verify_webhook(secrets, dict(self.headers.items()), body)
        except WebhookVerificationError as exc:
            return 401, f"signature not verified: {exc}"
        return 200, "signature verified"

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        receipts = self.server.receipts
        with receipts.lock:
            answer = json.dumps(
                {"by_status": receipts.by_status, "last": receipts.last}, indent=2
            ).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass  # one JSON line per webhook is logged instead
