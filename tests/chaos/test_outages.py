"""A dependency goes away while events flow, then comes back: Redis stopped for 10 s, MongoDB
stopped for 20 s, PostgreSQL restarted, the broker unreachable (frozen) for 20 s.

The API answers 503 with Retry-After meanwhile (never a 500, never a hang), nothing accepted is
lost, and everything accepted before the dependency returned has been delivered within 30 s of
its return, with no process restarted by hand."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pytest

from tests.chaos.conftest import chaos_events
from tests.chaos.services import OwnServices
from tests.chaos.traffic import tally
from tests.helpers import Reply

pytestmark = pytest.mark.chaos

RECOVERY_SECONDS = 30
DEFAULT_LEASE_SECONDS = 60  # eventhub/settings.py's WEBHOOK_LEASE_SECONDS
BURST = 0.4  # the share of the stream sent at once, just before the fault
ANSWER_SECONDS = 1.0  # how long the receiver takes for each answer (100 connections)
# the longest answer allowed: a publish waits for the broker at most KAFKA_MESSAGE_TIMEOUT_MS
# (5 s) plus the result's margin; Redis and PostgreSQL time out sooner
LONGEST_ANSWER_SECONDS = 10


@dataclass(frozen=True)
class Fault:
    name: str
    service: str
    hold: float  # seconds the dependency stays away
    how: str  # stop (stopped, then started), restart (at once), freeze (SIGSTOP, SIGCONT)

    def begin(self, services: OwnServices) -> None:
        if self.how == "freeze":
            services.freeze(self.service)
        else:
            services.stop(self.service)

    def end(self, services: OwnServices) -> None:
        if self.how == "freeze":
            services.thaw(self.service)
        else:
            services.start(self.service)


FAULTS = [
    Fault("redis stopped 10 s", "redis", 10, "stop"),
    Fault("mongodb stopped 20 s", "mongodb", 20, "stop"),
    Fault("postgres restarted", "postgres", 0, "restart"),
    Fault("broker unreachable 20 s", "kafka", 20, "freeze"),
]


@pytest.mark.parametrize("fault", FAULTS, ids=[f.service for f in FAULTS])
def test_the_system_rides_out_a_dependency_outage(fault, make_scene, stack_factory):
    scene = make_scene(["/hook/a"])
    count = chaos_events(1500)
    # the receiver takes its time, so that deliveries are queued and in flight when it hits
    scene.receiver.reply("/hook/a", *[Reply(delay=ANSWER_SECONDS)] * (2 * count))
    # the default lease (60 s): recovery must not wait for it, whatever the dependency lost
    stack = stack_factory(extra_env={"WEBHOOK_LEASE_SECONDS": str(DEFAULT_LEASE_SECONDS)})
    # a burst first, so that the fault finds work in every stage (events on the topic,
    # deliveries queued in Redis and in flight), then the rest spread over the outage
    producer = scene.producer(
        stack, count, burst=BURST, pace=max(0.02, (fault.hold + 20) / (count * (1 - BURST) / 100))
    )
    producer.start()
    while len(producer.accepted) < BURST * count:
        time.sleep(0.05)

    fault.begin(scene.services)
    time.sleep(fault.hold)
    fault.end(scene.services)
    returned = time.monotonic()
    owed_at_return = set(producer.accepted)

    recovered_in = None
    while time.monotonic() - returned < 120:
        if tally(scene.receiver, owed_at_return, scene.paths).lost == 0:
            recovered_in = time.monotonic() - returned
            break
        time.sleep(1.0)
    producer.join(timeout=600)
    assert producer.failure is None, producer.failure

    result = scene.wait(producer, timeout=180, settle=5)
    answers = producer.answers
    scene.report(fault.name, result)
    print(
        f"answers: {dict(answers.by_status)} slowest={answers.slowest:.1f}s "
        f"recovered_in={recovered_in if recovered_in is None else round(recovered_in, 1)}s "
        f"owed_at_return={len(owed_at_return)}",
        flush=True,
    )
    assert result.accepted == count
    assert result.lost == 0
    assert result.new_twice == 0
    # the API said "come back later", and how much later, rather than failing or hanging
    assert set(answers.by_status) <= {200, 503}, answers.by_status
    assert answers.unavailable_without_retry_after == 0
    assert answers.slowest < LONGEST_ANSWER_SECONDS
    assert recovered_in is not None and recovered_in <= RECOVERY_SECONDS
    assert all(stack.alive().values()), stack.alive()
