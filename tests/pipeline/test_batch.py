"""One batch through ``process_batch`` against the real PostgreSQL and MongoDB (the Kafka
messages are stand-ins): chunks, replays, the order of the mirror and the commit, and the JSON
decoding."""

from __future__ import annotations

import json
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import timedelta

import pytest
from bson import ObjectId
from django.db import connection
from hypothesis import given, settings
from hypothesis import strategies as st

from core import mongo
from events.registry import registry
from events.services import encode
from pipeline import batch as batches
from pipeline import consumer as consumers
from pipeline import decoding, mirroring, outages
from tests.events.factories import EventTypeFactory
from tests.subscriptions.factories import SubscriptionFactory
from webhooks.models import Delivery


class StandIn:
    """What the pipeline reads of a Kafka message."""

    def __init__(self, value: bytes, offset: int) -> None:
        self._value, self._offset = value, offset

    def value(self) -> bytes:
        return self._value

    def key(self) -> bytes | None:
        return None

    def headers(self) -> list:
        return []

    def topic(self) -> str:
        return "stand-in"

    def partition(self) -> int:
        return 0

    def offset(self) -> int:
        return self._offset

    def timestamp(self) -> tuple[int, int]:
        return (1, 1_795_000_000_000)


def messages(count: int, *, amount=lambda i: i, time="2026-11-20T10:00:00Z") -> list[StandIn]:
    run = uuid.uuid4().hex[:6]
    return [
        StandIn(
            encode(
                {
                    "id": f"{run}-{i}",
                    "source": "/batch",
                    "specversion": "1.0",
                    "type": "payment.failed",
                    "time": time,
                    "subject": f"user-{i % 7}",
                    "data": {"amount": amount(i)},
                }
            ),
            i,
        )
        for i in range(count)
    ]


@pytest.fixture
def queued(monkeypatch):
    """The (delivery id, subscription id) rows the pipeline queues after commit."""
    rows: list[tuple[int, int]] = []
    monkeypatch.setattr(batches, "deliveries_enqueue_on_commit", rows.extend)
    return rows


@pytest.fixture
def payments(db):
    EventTypeFactory(name="payment.failed", retention_days=7)
    registry.invalidate()
    yield
    registry.invalidate()


@pytest.fixture
def pool():
    with ThreadPoolExecutor(max_workers=1) as executor:
        yield executor


pytestmark = pytest.mark.django_db(transaction=True)


def test_a_batch_of_several_chunks_is_written_once_and_a_replay_adds_nothing(
    payments, mongo_db, queued, pool
):
    odd = SubscriptionFactory(event_types=["payment.*"], filter={"subject": "user-1"})
    every = SubscriptionFactory(event_types=["payment.failed"])
    paused = SubscriptionFactory(event_types=["*"], filter={"payload.amount": 3}, state="paused")
    batch = messages(batches.CHUNK * 2 + 7)

    result = batches.process_batch(batch, batches.Configuration(), mirror_pool=pool)
    assert (result.events, result.quarantined) == (len(batch), 0)
    rows = list(Delivery.objects.values_list("id", "subscription_id", "status"))
    assert sum(1 for _, s, _ in rows if s == every.pk) == len(batch)
    assert sum(1 for _, s, _ in rows if s == odd.pk) == len(
        [i for i in range(len(batch)) if i % 7 == 1]
    )
    assert [status for _, s, status in rows if s == paused.pk] == ["held"]
    assert result.deliveries == len(rows)
    # the new pending rows, and only those, are queued
    assert sorted(queued) == sorted((i, s) for i, s, status in rows if status == "pending")
    assert mongo_db[mongo.EVENTS].count_documents({}) == len(batch)
    source, event_id = result.mirrored[1]  # an event is its source and id
    stored = mongo_db[mongo.EVENTS].find_one({"source": source, "event_id": event_id})
    assert isinstance(stored["_id"], ObjectId)  # MongoDB made it
    assert (stored["user_id"], stored["payload"], stored["search_text"]) == (
        "user-1",
        {"amount": 1},
        "",
    )
    assert stored["expires_at"] - stored["received_at"] == timedelta(days=7)

    queued.clear()
    again = batches.process_batch(batch, batches.Configuration(), mirror_pool=pool)
    assert again.deliveries == len(rows)
    assert Delivery.objects.count() == len(rows) and queued == []
    assert mongo_db[mongo.EVENTS].count_documents({}) == len(batch)


def test_no_delivery_is_visible_before_its_event_is_stored(payments, mongo_db, queued, pool):
    SubscriptionFactory(event_types=["payment.failed"])
    seen_by_mirror: list[int] = []
    store = mirroring.mirror

    def slow_mirror(documents):
        time.sleep(0.2)  # PostgreSQL has long had its rows by now; they must not be committed
        seen_by_mirror.append(Delivery.objects.count())  # its own connection: committed rows
        connection.close()
        return store(documents)

    batch = messages(batches.CHUNK + 1)
    original, mirroring.mirror = mirroring.mirror, slow_mirror
    try:
        batches.process_batch(batch, batches.Configuration(), mirror_pool=pool)
    finally:
        mirroring.mirror = original
    assert seen_by_mirror == [0, 0]
    assert Delivery.objects.count() == len(batch)


def test_a_failed_mirror_rolls_the_batch_back(payments, mongo_db, queued, pool, monkeypatch):
    SubscriptionFactory(event_types=["payment.failed"])
    calls: list[int] = []

    def failing_mirror(documents):
        calls.append(len(documents))
        if len(calls) == 2:
            raise RuntimeError("MongoDB is down")
        return []

    monkeypatch.setattr(mirroring, "mirror", failing_mirror)
    with pytest.raises(RuntimeError, match="MongoDB is down"):
        batches.process_batch(
            messages(batches.CHUNK * 3), batches.Configuration(), mirror_pool=pool
        )
    assert calls == [batches.CHUNK] * 3  # every chunk finished before the batch gave up
    assert Delivery.objects.count() == 0 and queued == []


def test_invalid_events_are_set_aside_with_their_reason(
    payments, mongo_db, queued, pool, monkeypatch
):
    published: list[tuple[str, bytes, list]] = []

    class Publisher:
        def publish(self, topic, value, *, key=None, headers=None):
            published.append((topic, value, headers))
            future = Future()
            future.set_result((0, 0))
            return future

    monkeypatch.setattr(batches.kafka, "get_publisher", Publisher)
    batch = messages(batches.CHUNK + 3, amount=lambda i: -1 if i % 100 == 0 else i)
    result = batches.process_batch(batch, batches.Configuration(), mirror_pool=pool)
    bad = [m for m in batch if json.loads(m.value())["data"]["amount"] == -1]
    assert (result.events, result.quarantined) == (len(batch) - len(bad), len(bad))
    assert [value for _, value, _ in published] == [m.value() for m in bad]
    reasons = {dict(headers)["x-quarantine-reason"] for _, _, headers in published}
    assert reasons == {b"/data/amount: -1 is less than the minimum of 0"}


# --- JSON: orjson where it answers as json does --------------------------------------------------

tokens = st.sampled_from(
    [*'{}[]:," \\/-+.eE0123456789\t\n\x00', "true", "null", "NaN", "-Infinity", "1e400"]
    + ["\u00e9", "\ufeff", "\\ud800", "\\u00e9", "9" * 19, "-" + "9" * 20, "18446744073709551616"]
)
json_texts = st.one_of(
    st.lists(tokens, max_size=25).map(lambda parts: "".join(parts).encode()),
    st.binary(max_size=20),
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=5),
        lambda children: st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=3), children, max_size=3),
    ).map(lambda value: json.dumps(value).encode()),
)


def outcome(loads, value):
    try:
        return repr(loads(value))  # repr: 1 and 1.0 differ, NaN equals NaN
    except (TypeError, ValueError) as exc:
        return type(exc).__name__


@settings(max_examples=3000, deadline=None)
@given(text=json_texts)
def test_messages_decode_as_json_decodes_them(text):
    assert outcome(decoding.loads, text) == outcome(json.loads, text)


def test_integers_beyond_64_bits_stay_whole():
    assert decoding.loads(b'{"n": -9744184228926466326}') == {"n": -9744184228926466326}
    assert decoding.loads(b'{"n": 123456789012345678901234567890}') == {
        "n": 123456789012345678901234567890
    }


# --- a failure is an outage (retry the batch) or the content's (set the message aside) -----------


def test_a_message_that_always_fails_is_quarantined_and_the_others_go_on(
    payments, mongo_db, queued, pool, monkeypatch
):
    """Whatever the cause (here one seam: routing raises for one event), a message that never
    gets through is set aside after retries, and the rest of its batch is written."""
    SubscriptionFactory(event_types=["payment.failed"])
    published = []

    class Publisher:
        def publish(self, topic, value, *, key=None, headers=None):
            published.append((value, dict(headers or [])))
            future = Future()
            future.set_result((0, 0))
            return future

    monkeypatch.setattr(batches.kafka, "get_publisher", Publisher)
    route = batches.BatchWork.route

    def poisoned(self, documents):
        if any(d["payload"]["amount"] == 13 for d in documents):
            raise ValueError("no retry will ever route amount 13")
        return route(self, documents)

    monkeypatch.setattr(batches.BatchWork, "route", poisoned)
    batch = messages(30)
    consumer = consumers.PipelineConsumer()
    result = consumer._process(batch, pool)

    assert (result.events, result.quarantined) == (29, 1)
    assert Delivery.objects.count() == 29
    ((value, headers),) = published
    assert json.loads(value)["data"]["amount"] == 13
    assert headers["x-quarantine-reason"].startswith(
        b"the pipeline cannot process it: ValueError: no retry will ever route amount 13"
    )
    assert mongo_db[mongo.EVENTS].count_documents({"source": "/batch"}) == 29


def test_an_outage_is_not_blamed_on_the_messages(payments, mongo_db, queued, pool, monkeypatch):
    from pymongo.errors import AutoReconnect

    def down(documents):
        raise AutoReconnect("connection refused")

    monkeypatch.setattr(mirroring, "mirror", down)
    with pytest.raises(AutoReconnect):
        consumers.PipelineConsumer()._process(messages(5), pool)
    assert Delivery.objects.count() == 0  # retried later as a whole, nothing set aside


@pytest.mark.parametrize(
    ("error", "outage"),
    [
        ("AutoReconnect", True),
        ("ServerSelectionTimeoutError", True),
        ("ExecutionTimeout", True),
        ("OperationalError", True),
        ("RedisConnectionError", True),
        ("KafkaException", True),
        ("BulkWriteErrorOfDocuments", False),
        ("BulkWriteErrorOfWriteConcern", True),
        ("ValueError", False),
        ("IntegrityError", False),
    ],
)
def test_outages_are_told_from_content(error, outage):
    from confluent_kafka import KafkaException
    from django.db import IntegrityError, OperationalError
    from pymongo.errors import (
        AutoReconnect,
        BulkWriteError,
        ExecutionTimeout,
        ServerSelectionTimeoutError,
    )
    from redis.exceptions import ConnectionError as RedisConnectionError

    errors = {
        "AutoReconnect": AutoReconnect("x"),
        "ServerSelectionTimeoutError": ServerSelectionTimeoutError("x"),
        "ExecutionTimeout": ExecutionTimeout("operation exceeded time limit", code=50),
        "OperationalError": OperationalError("x"),
        "RedisConnectionError": RedisConnectionError("x"),
        "KafkaException": KafkaException("x"),
        "BulkWriteErrorOfDocuments": BulkWriteError(
            {"writeErrors": [{"code": 2, "index": 0}], "writeConcernErrors": []}
        ),
        "BulkWriteErrorOfWriteConcern": BulkWriteError(
            {"writeErrors": [], "writeConcernErrors": [{"code": 64}]}
        ),
        "ValueError": ValueError("x"),
        "IntegrityError": IntegrityError("x"),
    }
    assert outages.is_outage(errors[error]) is outage


def test_a_quarantine_line_carries_the_publishing_request_id(payments, mongo_db, queued):
    import logging

    from core.correlation import current_request_id

    seen: list[tuple[str, str | None]] = []

    class Seen(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            seen.append((record.getMessage(), current_request_id()))

    class Headed(StandIn):
        def headers(self) -> list:
            return [("x-request-id", b"req-from-shop")]

    handler = Seen()
    logging.getLogger("pipeline.batch").addHandler(handler)
    try:
        result = batches.process_batch([Headed(b"{not json", 0)], batches.Configuration())
    finally:
        logging.getLogger("pipeline.batch").removeHandler(handler)
    assert result.quarantined == 1
    ((message, request_id),) = [s for s in seen if s[0].startswith("quarantined")]
    assert request_id == "req-from-shop"
    assert current_request_id() is None  # only for that line
