"""The pipeline against the real broker, MongoDB and PostgreSQL."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from datetime import timedelta
from pathlib import Path

import pytest
from confluent_kafka import KafkaError, KafkaException, Producer
from django.conf import settings

from core import kafka, mongo
from events.registry import registry
from events.services import Door, encode, events_publish
from pipeline.consumer import PipelineConsumer
from rules.models import RuleMatch
from tests.events.factories import EventTypeFactory
from tests.helpers import find_in_topic, pipeline_env
from tests.rules.factories import RuleFactory
from tests.subscriptions.factories import SubscriptionFactory
from webhooks.models import Delivery

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture
def topic(settings, unique_name, clean_redis):
    """A fresh events topic and consumer group for the test."""
    settings.KAFKA_TOPIC_EVENTS = f"{unique_name}.events"
    settings.PIPELINE_GROUP_ID = f"{unique_name}-pipeline"
    kafka.ensure_topics([kafka.TopicSpec(settings.KAFKA_TOPIC_EVENTS, 3)])
    return settings.KAFKA_TOPIC_EVENTS


@pytest.fixture
def types(db):
    EventTypeFactory(name="payment.failed", retention_days=7)
    EventTypeFactory(name="order.created", retention_days=30, schema={"type": "object"})
    EventTypeFactory(name="order.shipped", retention_days=30, schema={"type": "object"})
    registry.invalidate()
    yield
    registry.invalidate()


def publish(*events: dict) -> list[str]:
    envelopes = [
        {
            "id": str(uuid.uuid4()),
            "source": "/test",
            "specversion": "1.0",
            "time": "2026-11-20T10:00:00Z",
            **event,
        }
        for event in events
    ]
    outcomes = events_publish(envelopes=envelopes, wait=True, door=Door.REST, request_id="test")
    assert [o.status for o in outcomes] == ["accepted"] * len(envelopes), outcomes
    return [e["id"] for e in envelopes]


def run_pipeline(expected: int) -> int:
    return PipelineConsumer(batch_timeout_ms=100).run(max_events=expected, idle_exit_seconds=15)


pytestmark = pytest.mark.django_db(transaction=True)


def test_every_event_lands_in_mongodb_once_with_its_ttl(topic, types, mongo_db):
    ids = publish(
        *[{"type": "payment.failed", "subject": f"u{i}", "data": {"amount": i}} for i in range(20)]
    )
    ids += publish({"type": "order.created", "data": {"order_id": "o"}})
    assert run_pipeline(21) == 21
    # A second consumer of the same group finds nothing left: offsets were committed.
    assert PipelineConsumer(batch_timeout_ms=100).run(idle_exit_seconds=8) == 0

    stored = {d["event_id"]: d for d in mongo_db[mongo.EVENTS].find({"event_id": {"$in": ids}})}
    assert set(stored) == set(ids)
    assert mongo_db[mongo.EVENTS].count_documents({}) == 21
    payment = stored[ids[0]]
    assert payment["expires_at"] - payment["received_at"] == timedelta(days=7)
    assert stored[ids[-1]]["expires_at"] - stored[ids[-1]]["received_at"] == timedelta(days=30)
    assert payment["user_id"] == "u0" and payment["payload"] == {"amount": 0}


class RefusedOnce:
    """A real consumer whose first commit the broker refuses (as it does while unreachable,
    or once a rebalance gave the partitions to another member)."""

    def __init__(self, consumer) -> None:
        self._consumer = consumer
        self.refused = 0

    def commit(self, *args, **kwargs):
        if not self.refused:
            self.refused += 1
            raise KafkaException(KafkaError(KafkaError.REBALANCE_IN_PROGRESS))
        return self._consumer.commit(*args, **kwargs)

    def __getattr__(self, name):
        return getattr(self._consumer, name)


def test_a_refused_commit_does_not_stop_the_consumer(topic, types, mongo_db):
    class Pipeline(PipelineConsumer):
        def _new_consumer(self):
            self.wrapped = RefusedOnce(super()._new_consumer())
            return self.wrapped

    ids = publish(*[{"type": "order.created", "subject": "one-key", "data": {}} for _ in range(6)])
    pipeline = Pipeline(batch_size=3, batch_timeout_ms=100)
    assert pipeline.run(max_events=6, idle_exit_seconds=15) == 6
    assert pipeline.wrapped.refused == 1
    assert mongo_db[mongo.EVENTS].count_documents({"event_id": {"$in": ids}}) == 6
    # the second batch's commit covered the first's: nothing is left to read
    assert PipelineConsumer(batch_timeout_ms=100).run(idle_exit_seconds=8) == 0


def test_routing_by_exact_type_wildcard_and_filter(topic, types, mongo_db):
    exact = SubscriptionFactory(event_types=["payment.failed"])
    wildcard = SubscriptionFactory(event_types=["order.*"])
    filtered = SubscriptionFactory(event_types=["*"], filter={"payload.amount": {"$gte": 100}})
    paused = SubscriptionFactory(event_types=["order.shipped"], state="paused")
    small, big = publish(
        {"type": "payment.failed", "data": {"amount": 5}},
        {"type": "payment.failed", "data": {"amount": 500}},
    )
    created, shipped = publish(
        {"type": "order.created", "data": {}}, {"type": "order.shipped", "data": {}}
    )
    run_pipeline(4)

    pairs = set(Delivery.objects.values_list("event_id", "subscription_id", "status"))
    assert pairs == {
        (small, exact.pk, "pending"),
        (big, exact.pk, "pending"),
        (big, filtered.pk, "pending"),
        (created, wildcard.pk, "pending"),
        (shipped, wildcard.pk, "pending"),
        (shipped, paused.pk, "held"),
    }


def test_rules_with_a_threshold_window_and_cooldown(topic, types, mongo_db):
    target = SubscriptionFactory(event_types=["order.created"])
    rule = RuleFactory(
        conditions={"type": "payment.failed"},
        actions=[
            {"type": "notify", "message": "card trouble"},
            {"type": "deliver", "subscription": target.pk},
        ],
        threshold_count=3,
        threshold_window_seconds=600,
        threshold_key="user_id",
        cooldown_seconds=3600,
    )
    events = [
        {
            "type": "payment.failed",
            "subject": user,
            "data": {"amount": 1},
            "time": f"2026-11-20T10:0{minute}:00Z",
        }
        for minute, user in enumerate(["ann", "ann", "bob", "ann", "ann", "bob", "bob"])
    ]
    ids = publish(*events)
    run_pipeline(len(ids))

    fired = list(RuleMatch.objects.filter(rule=rule).order_by("event_id"))
    # ann's third failure fires; her fourth is inside the cooldown; bob's third fires
    assert sorted(m.event_id for m in fired) == sorted([ids[3], ids[6]])
    assert {m.threshold_key for m in fired} == {"ann", "bob"}
    assert all(m.notification == "card trouble" for m in fired)
    assert set(Delivery.objects.filter(rule=rule).values_list("event_id", flat=True)) == {
        ids[3],
        ids[6],
    }


def test_bad_messages_go_to_quarantine_and_the_stream_goes_on(topic, types, mongo_db):
    producer = Producer(kafka.base_config())
    good = {
        "id": str(uuid.uuid4()),
        "source": "/raw",
        "specversion": "1.0",
        "type": "payment.failed",
        "time": "2026-11-20T10:00:00Z",
        "data": {"amount": 1},
    }
    invalid = {**good, "id": str(uuid.uuid4()), "data": {"amount": -1}}
    unknown = {**good, "id": str(uuid.uuid4()), "type": "no.such_type"}
    after = {**good, "id": str(uuid.uuid4())}
    bodies = [
        b"\xff not json",
        json.dumps([1, 2]).encode(),
        encode(invalid),
        encode(unknown),
        encode(good),
        encode(after),
    ]
    for body in bodies:
        producer.produce(topic, body, key=b"same-partition")
    producer.flush(10)

    assert run_pipeline(len(bodies)) == len(bodies)
    stored = {d["event_id"] for d in mongo_db[mongo.EVENTS].find()}
    assert stored == {good["id"], after["id"]}

    quarantined = find_in_topic(settings.KAFKA_TOPIC_QUARANTINE, {invalid["id"], unknown["id"]})
    (message,) = quarantined[invalid["id"]]
    headers = dict(message.headers())
    assert b"/data/amount" in headers["x-quarantine-reason"]
    assert headers["x-original-topic"] == topic.encode()
    assert int(headers["x-original-offset"]) >= 0
    assert message.value() == encode(invalid)  # unchanged
    assert (
        b"unknown event type"
        in dict(quarantined[unknown["id"]][0].headers())["x-quarantine-reason"]
    )


def test_a_consumer_killed_mid_stream_loses_and_duplicates_nothing(topic, types, mongo_db):
    subscriptions = [SubscriptionFactory(event_types=["payment.failed"]) for _ in range(2)]
    SubscriptionFactory(event_types=["order.created"])  # matches none of the events
    total = 5000
    producer = kafka.get_publisher()
    ids = []
    for i in range(total):
        envelope = {
            "id": f"k-{i}",
            "source": "/kill",
            "specversion": "1.0",
            "type": "payment.failed",
            "time": "2026-11-20T10:00:00Z",
            "subject": f"user-{i % 50}",
            "data": {"amount": i},
        }
        ids.append(envelope["id"])
        producer.publish(topic, encode(envelope), key=envelope["subject"].encode())
    assert producer.flush(30) == 0

    env = pipeline_env()
    command = [
        sys.executable,
        "manage.py",
        "consume_events",
        "--batch-size",
        "250",
        "--idle-exit",
        "6",
    ]
    first = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while Delivery.objects.count() < 1500 and time.monotonic() < deadline:
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait(10)
    done_before_kill = Delivery.objects.count()
    assert 0 < done_before_kill < total * 2, "kill the consumer mid-stream"

    second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stdout + second.stderr

    expected = {(event_id, s.pk) for event_id in ids for s in subscriptions}
    rows = list(Delivery.objects.values_list("event_id", "subscription_id"))
    assert len(rows) == len(expected)  # no duplicate rows...
    assert set(rows) == expected  # ...and none missing
    assert mongo_db[mongo.EVENTS].count_documents({"source": "/kill"}) == total


def test_sigterm_finishes_commits_and_exits(topic, types, mongo_db, free_port):
    ids = publish(*[{"type": "order.created", "data": {}} for _ in range(10)])
    env = pipeline_env()
    process = subprocess.Popen(
        [sys.executable, "manage.py", "consume_events", "--metrics-port", str(free_port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if mongo_db[mongo.EVENTS].count_documents({"event_id": {"$in": ids}}) == len(ids):
            break
        time.sleep(0.1)
    # the command serves its own metrics: what it processed, and its uptime
    metrics = ""
    while time.monotonic() < deadline and "events_processed_total 10.0" not in metrics:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{free_port}/metrics") as response:
                metrics = response.read().decode()
        except OSError:
            time.sleep(0.1)
    assert "events_processed_total 10.0" in metrics
    assert "service_uptime_seconds{" in metrics
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "processed 10 message(s)" in out
    # the offsets were committed: the group has nothing left to read
    assert PipelineConsumer(batch_timeout_ms=100).run(idle_exit_seconds=3) == 0
