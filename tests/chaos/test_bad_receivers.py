"""Receivers that misbehave: too slow to answer, resetting the connection, 500, 429 with
Retry-After, a redirect. Retries follow the subscription's schedule (or the endpoint's
Retry-After), a redirect is never followed, and whatever comes again carries the same
webhook-id: nothing is delivered twice as new."""

from __future__ import annotations

import json
from collections import defaultdict

import pytest

from tests.chaos.traffic import tally
from tests.helpers import Reply

pytestmark = pytest.mark.chaos

SCHEDULE = [2, 6, 6]  # seconds: the first retry after 2 s (±20 %), Retry-After within [2, 6]
TIMEOUT = 2  # the subscriptions' request timeout
EVENTS = 5  # per receiver
# how much later than due a retry may come: the sweeper runs every second, then the task
LATE = 2.0


def test_misbehaving_receivers_get_retries_on_schedule_and_nothing_new_twice(
    make_scene, stack_factory
):
    paths = ["/slow", "/reset", "/error", "/busy", "/moved"]
    scene = make_scene(paths, timeout=TIMEOUT, retry_schedule=SCHEDULE)
    receiver = scene.receiver
    faults = {
        "/slow": Reply(delay=TIMEOUT + 2),
        "/reset": Reply(reset=True),
        "/error": Reply(500, body=b"oops"),
        "/busy": Reply(429, headers={"Retry-After": "5"}),
        "/moved": Reply(302, headers={"Location": receiver.url("/elsewhere")}),
    }
    for path, fault in faults.items():
        receiver.reply(path, *[fault] * EVENTS)
    stack = stack_factory()
    producer = scene.producer(stack, EVENTS)
    producer.run()
    assert producer.failure is None, producer.failure

    delivered = [p for p in paths if p != "/moved"]
    result = scene.wait(producer, timeout=60, settle=10)
    scene.report("misbehaving receivers", result)

    by_id: dict[str, list] = defaultdict(list)
    for request in receiver.received:
        by_id[request.headers["webhook-id"]].append(request)
    gaps: dict[str, list[float]] = defaultdict(list)
    for requests in by_id.values():
        path = requests[0].path
        assert all(r.path == path for r in requests)
        assert len(requests) == (1 if path == "/moved" else 2), (path, len(requests))
        if len(requests) == 2:
            gaps[path].append(requests[1].at - requests[0].at)
    print({path: [round(g, 1) for g in sorted(values)] for path, values in gaps.items()})

    # (first request, retry): the schedule's first wait with its jitter, after the request's
    # end (at once for a reset or a 500, after the timeout for the slow one)
    low, high = SCHEDULE[0] * 0.8, SCHEDULE[0] * 1.2 + LATE
    for path in ("/reset", "/error"):
        assert all(low <= gap <= high for gap in gaps[path]), (path, gaps[path])
    assert all(TIMEOUT + low <= gap <= TIMEOUT + high for gap in gaps["/slow"]), gaps["/slow"]
    # Retry-After: 5 is within the schedule's bounds, so it is honoured as it is, no jitter
    assert all(5 <= gap <= 5 + LATE for gap in gaps["/busy"]), gaps["/busy"]
    # a redirect is not followed, and ends the delivery
    assert not receiver.at("/elsewhere")
    assert len(receiver.at("/moved")) == EVENTS

    owed = tally(receiver, producer.accepted, delivered)
    assert owed.lost == 0 and owed.new_twice == 0
    assert result.new_twice == 0
    bodies = {json.loads(r.body)["id"] for r in receiver.at("/error")}
    assert bodies == producer.accepted
