"""Fixtures of the fault suite: services of its own (started once per run), a fresh scene per
test (event type, subscriptions to a real receiver, a writer key) and the stack around it."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.chaos.services import OwnServices
from tests.chaos.stack import Stack, manage, scene
from tests.chaos.traffic import Producer, Tally, wait_for_deliveries
from tests.helpers import Receiver


def chaos_events(quick: int) -> int:
    """Events a test streams: ``quick`` unless ``CHAOS_EVENTS`` says how many (the issue's
    full runs: ``make chaos CHAOS_EVENTS=20000``)."""
    return int(os.environ.get("CHAOS_EVENTS") or quick)


@pytest.fixture(scope="session")
def own_services() -> Iterator[OwnServices]:
    services = OwnServices()
    try:
        services.start()
        manage(services, "migrate", "--noinput", "-v", "0")
        manage(services, "ensure_kafka_topics")
        manage(services, "ensure_mongo_indexes")
        yield services
    finally:
        services.close()


@dataclass
class Scene:
    services: OwnServices
    receiver: Receiver
    tag: str
    event_type: str
    paths: list[str]
    key: str
    subscriptions: dict[str, int]
    workdir: object
    started: float

    def producer(self, stack: Stack, count: int, **kwargs) -> Producer:
        return Producer(
            stack.url, self.key, event_type=self.event_type, tag=self.tag, count=count, **kwargs
        )

    def wait(self, producer: Producer, *, timeout: float, settle: float = 3.0) -> Tally:
        return wait_for_deliveries(
            self.receiver, producer.accepted, self.paths, timeout=timeout, settle=settle
        )

    def report(self, name: str, result: Tally) -> None:
        print(result.line(name, time.monotonic() - self.started), flush=True)


@pytest.fixture
def make_scene(own_services, tmp_path):
    """``make_scene(paths, timeout=5, **subscription fields)``: the test's event type and
    subscriptions (``timeout``: their request timeout, seconds)."""
    own_services.ensure_up()
    receivers: list[Receiver] = []

    def _make(paths: list[str] | None = None, *, timeout: int = 5, **fields) -> Scene:
        receiver = Receiver()
        receivers.append(receiver)
        tag = f"c{uuid.uuid4().hex[:8]}"
        event_type = f"chaos.{tag}"
        paths = paths or ["/hook/a"]
        made = scene(
            own_services,
            tag=tag,
            event_type=event_type,
            base_url=receiver.url(""),
            paths=paths,
            timeout=timeout,
            fields=fields,
        )
        return Scene(
            services=own_services,
            receiver=receiver,
            tag=tag,
            event_type=event_type,
            paths=paths,
            key=made["key"],
            subscriptions=made["subscriptions"],
            workdir=tmp_path,
            started=time.monotonic(),
        )

    yield _make
    for receiver in receivers:
        receiver.close()


@pytest.fixture
def stack_factory(own_services, tmp_path):
    stacks: list[Stack] = []

    def _start(**kwargs) -> Stack:
        stack = Stack(own_services, tmp_path, **kwargs).start()
        stacks.append(stack)
        return stack

    yield _start
    for stack in stacks:
        stack.stop()
