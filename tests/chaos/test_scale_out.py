"""Scaled out with no fault at all: two pipeline consumers splitting the partitions, two webhook
workers, three subscriptions. Every delivery arrives, and each is sent once."""

from __future__ import annotations

import json

import pytest

from tests.chaos.conftest import chaos_events
from tests.chaos.stack import manage
from tests.helpers import Reply

pytestmark = pytest.mark.chaos

ATTEMPTS = """
import json
from webhooks.models import DeliveryAttempt
ids = {ids!r}
print(json.dumps([
    [a.delivery_id, a.number, a.response_status, a.error_class, a.duration_ms,
     a.created_at.isoformat()]
    for a in DeliveryAttempt.objects.filter(delivery_id__in=ids).order_by("delivery_id", "number")
]))
"""


# A receiver that takes its time (every answer a 200 well within the timeout) makes requests
# wait for a connection: the sender holds far more claims than it has connections.
@pytest.mark.parametrize("answer_seconds", [0, 0.5], ids=["fast-receiver", "slow-receiver"])
def test_scaled_out_without_faults_each_delivery_is_sent_once(
    answer_seconds, make_scene, stack_factory
):
    paths = ["/hook/a", "/hook/b", "/hook/c"]
    scene = make_scene(paths)
    count = chaos_events(3000)
    if answer_seconds:
        for path in paths:
            scene.receiver.reply(path, *[Reply(delay=answer_seconds)] * (2 * count))
    stack = stack_factory(pipelines=2, webhook_workers=2)
    producer = scene.producer(stack, count)
    producer.start()
    producer.join(timeout=900)
    assert producer.failure is None, producer.failure

    result = scene.wait(producer, timeout=300, settle=20)
    scene.report(f"scaled out, no fault, answers in {answer_seconds} s", result)
    twice = sorted(w for w, n in result.attempts_by_webhook_id.items() if n > 1)
    if twice:
        ids = [int(w.removeprefix("msg_")) for w in twice[:50]]
        out = manage(scene.services, "shell", "-c", ATTEMPTS.format(ids=ids))
        print("attempts of the deliveries sent twice:", flush=True)
        for row in json.loads(out.strip().splitlines()[-1]):
            print("  ", row, flush=True)
    assert result.accepted == count
    assert result.expected == 3 * count
    assert result.lost == 0
    assert result.new_twice == 0
    assert result.duplicated == 0, twice[:20]
