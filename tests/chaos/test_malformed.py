"""Malformed and schema-invalid messages written straight to the events topic, between valid
events: each is quarantined with its reason, the consumer never stops, the valid events are
delivered."""

from __future__ import annotations

import json
import time
import uuid
from collections import Counter

import pytest
from confluent_kafka import Consumer, Producer

from tests.chaos.conftest import chaos_events
from tests.chaos.traffic import wait_for_deliveries

EVENTS_TOPIC = "eventhub.events"
QUARANTINE_TOPIC = "eventhub.quarantine"
DEEP = b"[" * 5000 + b"]" * 5000  # deeper than any JSON reader goes


def bad_messages(event_type: str, tag: str) -> list[tuple[str, bytes]]:
    """One of each kind of fault, with the words its quarantine reason must hold."""

    def envelope(n: int, **fields) -> bytes:
        body = {"id": f"{tag}-bad-{n}", "source": "/chaos", "specversion": "1.0"}
        body.update(type=event_type, data={"n": n})
        body.update(fields)
        return json.dumps({k: v for k, v in body.items() if v is not None}).encode()

    return [
        ("not JSON", b"\x00\xffnot json at all"),
        ("not JSON", b'{"id": "x", "source": '),
        ("not a JSON object", b"[1, 2, 3]"),
        ("not JSON", b""),
        ("missing id", envelope(1, id=None)),
        ("missing type", envelope(2, type=None)),
        ("unknown event type", envelope(3, type="chaos.nobody-knows")),
        ("/data", envelope(4, data={"n": "not an integer"})),
        ("/data", envelope(5, data={"m": 1})),
        ("64 bits", envelope(6, data={"n": 2**70})),
        ("specversion", envelope(7, specversion="0.3")),
        ("deep", b'{"id": "d", "source": "/s", "type": "t", "data": %s}' % DEEP),
    ]


def quarantined(bootstrap: str, tags: set[str], expected: int, timeout: float) -> list:
    """The quarantined messages that carry one of our marks (header ``x-chaos``)."""
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": f"chaos-{uuid.uuid4().hex}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.subscribe([QUARANTINE_TOPIC])
    found = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline and len(found) < expected:
            for message in consumer.consume(1000, timeout=0.5):
                if message.error() is None:
                    headers = dict(message.headers() or [])
                    if headers.get("x-chaos", b"").decode() in tags:
                        found.append(message)
    finally:
        consumer.close()
    return found


@pytest.mark.chaos
def test_malformed_messages_are_quarantined_and_valid_ones_delivered(make_scene, stack_factory):
    run(make_scene, stack_factory, bad=chaos_events(10000), good_every=10)


def test_a_few_malformed_messages_between_valid_ones(make_scene, stack_factory):
    """The quick case of the above, part of ``make test``."""
    run(make_scene, stack_factory, bad=600, good_every=3)


def run(make_scene, stack_factory, *, bad: int, good_every: int) -> None:
    scene = make_scene(["/hook/a"])
    stack = stack_factory()
    bootstrap = scene.services.env["KAFKA_BOOTSTRAP_SERVERS"]
    kinds = bad_messages(scene.event_type, scene.tag)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
    valid: set[str] = set()
    expected_reasons: dict[str, str] = {}
    for n in range(bad):
        words, value = kinds[n % len(kinds)]
        mark = f"{scene.tag}-{n}"
        expected_reasons[mark] = words
        producer.produce(EVENTS_TOPIC, value, key=str(n % 13), headers=[("x-chaos", mark)])
        if n % good_every == 0:
            event_id = f"{scene.tag}-good-{n}"
            body = {
                "id": event_id,
                "source": "/chaos",
                "specversion": "1.0",
                "type": scene.event_type,
                "data": {"n": n},
            }
            producer.produce(EVENTS_TOPIC, json.dumps(body).encode(), key=str(n % 13))
            valid.add(event_id)
        if n % 1000 == 0:
            producer.poll(0)
    assert producer.flush(60) == 0

    result = wait_for_deliveries(scene.receiver, valid, scene.paths, timeout=300)
    found = quarantined(bootstrap, set(expected_reasons), bad, timeout=120)
    reasons = {
        dict(m.headers())["x-chaos"].decode(): dict(m.headers())["x-quarantine-reason"].decode()
        for m in found
    }
    wrong = {
        mark: (expected_reasons[mark], reason)
        for mark, reason in reasons.items()
        if expected_reasons[mark].lower() not in reason.lower()
    }
    scene.report(f"{bad} malformed messages", result)
    print(
        f"quarantined={len(found)} of {bad} (distinct {len(reasons)}), wrong reasons={len(wrong)} "
        f"by kind={dict(Counter(expected_reasons[m] for m in reasons))}",
        flush=True,
    )
    assert result.accepted == len(valid)
    assert result.lost == 0
    assert result.new_twice == 0
    assert result.duplicated == 0
    assert len(reasons) == len(found) == bad  # each once
    assert not wrong, list(wrong.items())[:5]
    assert all(stack.alive().values()), stack.alive()
    # and the consumer is still consuming: one more valid event gets through
    late = f"{scene.tag}-late"
    body = {"id": late, "source": "/chaos", "specversion": "1.0", "type": scene.event_type}
    producer.produce(EVENTS_TOPIC, json.dumps({**body, "data": {"n": -1}}).encode())
    producer.flush(10)
    assert wait_for_deliveries(scene.receiver, {late}, scene.paths, timeout=30, settle=0).lost == 0
