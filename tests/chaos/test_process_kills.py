"""SIGKILL mid-stream: the pipeline consumer, a webhook worker and the web process are killed
while events flow, then started again; nothing accepted is lost, and whatever is sent twice
carries the same webhook-id (the receiver can drop it)."""

from __future__ import annotations

import time

import pytest

from tests.chaos.conftest import chaos_events

pytestmark = pytest.mark.chaos

STREAM_SECONDS = 45


def wait_until(check, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("the stream stalled before the next kill")
        time.sleep(0.1)


def test_killed_processes_lose_no_accepted_event(make_scene, stack_factory):
    scene = make_scene(["/hook/a", "/hook/b"])
    stack = stack_factory()
    count = chaos_events(3000)
    # paced so that the stream lasts a minute or so: each kill lands mid-stream
    producer = scene.producer(stack, count, pace=STREAM_SECONDS / (count / 100))
    producer.start()

    for at, victim in ((0.2, "pipeline0"), (0.45, "webhooks0"), (0.7, "web")):
        wait_until(lambda at=at: producer.progress() >= at, timeout=600)
        # a kill with work in hand: wait until the receiver is getting webhooks
        if victim == "webhooks0":
            wait_until(lambda: len(scene.receiver.received) > 0, timeout=120)
        stack.kill(victim)
        time.sleep(2)
        stack.start(victim)
    producer.join(timeout=900)
    assert producer.failure is None, producer.failure

    result = scene.wait(producer, timeout=300, settle=25)
    scene.report("kill pipeline, webhook worker and web", result)
    print(f"answers: {dict(producer.answers.by_status)}", flush=True)
    assert result.accepted == count
    assert result.lost == 0
    assert result.new_twice == 0  # a duplicate is the same delivery again, never a new one
    assert all(stack.alive().values()), stack.alive()
