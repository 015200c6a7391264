"""A client that stops taking what the stream sends is disconnected with the reason, and its
slot comes back; the one fake is the ASGI ``send`` (a client that never reads)."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest

from accounts.roles import Role
from accounts.services import api_key_create
from analytics.live import asgi as live
from analytics.live.feed import slots
from core import mongo
from core.documents import event_document

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_stalled_sse_client_is_disconnected_with_the_reason(settings, mongo_db):
    settings.STREAM_SEND_TIMEOUT_SECONDS = 0.5
    key = api_key_create(name="slow reader", role=Role.READER)[1]
    sent: list[dict] = []
    stalled = asyncio.Event()

    async def send(message: dict) -> None:
        sent.append(message)
        if b"event: event" in message.get("body", b"") or b"client-too-slow" in message.get(
            "body", b""
        ):
            stalled.set()
            await asyncio.Event().wait()  # the client takes nothing more

    async def receive() -> dict:
        await asyncio.Event().wait()  # nor does it leave
        return {"type": "http.disconnect"}

    scope = {
        "type": "http",
        "method": "GET",
        "path": "/api/v1/stream/events",
        "query_string": b"",
        "headers": [(b"x-api-key", key.encode())],
    }

    async def scenario() -> float:
        stream = asyncio.ensure_future(live.sse_app(scope, receive, send))
        while not any(m.get("type") == "http.response.start" for m in sent):
            await asyncio.sleep(0.05)
        assert slots.open == 1
        envelope = {
            "id": uuid.uuid4().hex,
            "source": "/slow",
            "type": "order.created",
            "time": "2026-12-01T10:00:00Z",
            "data": {},
        }
        mongo_db[mongo.EVENTS].insert_one(event_document(envelope, retention_days=1))
        started = time.monotonic()
        await asyncio.wait_for(stream, 10)
        return time.monotonic() - started

    took = asyncio.run(scenario())
    assert took < 5
    assert slots.open == 0  # the slot came back
    reasons = [m["body"] for m in sent if b"client-too-slow" in m.get("body", b"")]
    assert reasons and b"reconnect with Last-Event-ID" in reasons[0]
    assert sent[0]["status"] == 200
