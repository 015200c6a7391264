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


def test_a_stream_that_falls_behind_the_shared_feed_is_ended(settings):
    from analytics.live.feed import Change, _Follower
    from analytics.windows import Filters

    settings.STREAM_BUFFER_EVENTS = 10

    async def scenario():
        follower = _Follower(Filters(types=("order.*",)))
        for i in range(25):  # the shared change stream offers faster than the client takes
            follower.offer(Change(f"p{i}", None, {"type": "order.created", "source": "/s"}))
            follower.offer(Change(f"x{i}", None, {"type": "user.login", "source": "/s"}))
        with pytest.raises(live.StreamRefused) as ended:
            await follower.next()
        return ended.value, follower.queue.qsize()

    refused, queued = asyncio.run(scenario())
    assert refused.status == 408 and "fell 10 events behind" in refused.detail
    assert queued <= 10  # memory stays bounded


def test_followers_filter_as_the_query_language_does():
    from analytics.live.feed import _predicate
    from analytics.windows import Filters

    keep = _predicate(
        Filters(types=("order.*", "user.login"), source="/s", query={"payload.n": {"$gt": 1}})
    )
    base = {"type": "order.paid", "source": "/s", "payload": {"n": 2}, "user_id": None}
    assert keep(base)
    assert keep({**base, "type": "user.login"})
    assert not keep({**base, "type": "user.logout"})
    assert not keep({**base, "type": "orderx"})
    assert not keep({**base, "source": "/t"})
    assert not keep({**base, "payload": {"n": 1}})
    assert _predicate(Filters())({**base, "type": "anything"})
