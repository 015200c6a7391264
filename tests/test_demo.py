"""A first run shows webhooks succeed: seed_demo's subscription delivers to the demo receiver,
which verifies the signatures, and demo_traffic's events flow through the real pipeline."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from django.core.management import call_command

from core import kafka
from eventhub.demo import DEMO_PATH, DemoReceiver, demo_traffic, receiver_url
from events.registry import registry
from pipeline.consumer import PipelineConsumer
from subscriptions.models import Subscription
from webhooks.models import Delivery
from webhooks.services.actions import subscription_send_test

pytestmark = pytest.mark.django_db(transaction=True)  # the receiver reads from its own thread


@pytest.fixture
def receiver(settings) -> Iterator[DemoReceiver]:
    server = DemoReceiver(0)
    settings.DEMO_RECEIVER_PORT = server.server_port
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def seeded(roles, receiver) -> Subscription:
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    registry.invalidate()
    yield Subscription.objects.get(name="Payment problems")
    registry.invalidate()


def test_the_demo_subscription_delivers_to_the_receiver_which_verifies_it(seeded, receiver):
    assert seeded.url == receiver_url(DEMO_PATH, receiver.server_port)
    delivery = subscription_send_test(subscription=seeded)
    assert (delivery.status, delivery.last_status_code) == ("succeeded", 200)
    (record,) = receiver.receipts.last
    assert record["detail"] == "signature verified"
    assert record["webhook_id"] == delivery.message_id


def test_the_receiver_refuses_a_forged_signature(seeded, receiver):
    request = urllib.request.Request(
        seeded.url,
        data=b'{"type": "payment.failed"}',
        headers={
            "webhook-id": "msg_1",
            "webhook-timestamp": "9999999999",
            "webhook-signature": "v1,Zm9yZ2Vk",
        },
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=5)
    assert refused.value.code == 401
    assert receiver.receipts.by_status == {401: 1}


def test_seeding_again_moves_the_old_example_url_to_the_receiver(seeded, receiver):
    Subscription.objects.filter(pk=seeded.pk).update(url="https://example.com/webhooks/eventhub")
    call_command("seed_demo", stdout=open("/dev/null", "w"))  # noqa: SIM115
    seeded.refresh_from_db()
    assert seeded.url == receiver_url(DEMO_PATH, receiver.server_port)


@pytest.fixture
def topic(settings, unique_name, clean_redis):
    settings.KAFKA_TOPIC_EVENTS = f"{unique_name}.events"
    settings.PIPELINE_GROUP_ID = f"{unique_name}-pipeline"
    kafka.ensure_topics([kafka.TopicSpec(settings.KAFKA_TOPIC_EVENTS, 3)])
    return settings.KAFKA_TOPIC_EVENTS


def test_demo_traffic_flows_through_the_pipeline_and_its_webhooks_succeed(
    seeded, receiver, topic, mongo_db, eager_tasks
):
    published = demo_traffic(count=12, seed=7)
    assert {outcome.status for _, outcome in published} == {"accepted"}
    wanted = [
        envelope
        for envelope, _ in published
        if envelope["type"] == "payment.failed" and envelope["data"]["amount"] >= 10
    ]
    assert wanted, "the seed gives payments the demo filter accepts"

    assert PipelineConsumer(batch_timeout_ms=100).run(max_events=12, idle_exit_seconds=15) == 12

    deliveries = Delivery.objects.filter(subscription=seeded, is_test=False)
    assert sorted(deliveries.values_list("event_id", flat=True)) == sorted(
        envelope["id"] for envelope in wanted
    )
    assert set(deliveries.values_list("status", flat=True)) == {"succeeded"}
    assert receiver.receipts.by_status == {200: len(wanted)}
    assert {json.dumps(r["detail"]) for r in receiver.receipts.last} == {'"signature verified"'}


def test_the_demo_traffic_command_reports_what_was_accepted(seeded, topic, capsys):
    call_command("demo_traffic", "--count", "3", "--seed", "1")
    assert capsys.readouterr().out.strip() == "Published 3 demo events: 3 accepted."
