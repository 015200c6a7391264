"""Webhook delivery against real local HTTP receivers, PostgreSQL, MongoDB, Redis and Kafka.

Tasks run eagerly here (Celery's own eager mode), so queueing a delivery sends it in this
process; tests/webhooks/test_worker.py runs the same path through a real Celery worker.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path

import jsonschema
import pytest
import yaml
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from subscriptions.models import Subscription
from subscriptions.services import subscription_add_secret, subscription_rotate_secret
from tests.helpers import Reply, find_in_topic
from tests.subscriptions.factories import SubscriptionFactory
from webhooks.models import Delivery, DeliveryAttempt
from webhooks.services.actions import (
    deliveries_replay,
    subscription_release_held,
    subscription_send_test,
)
from webhooks.services.dispatch import deliveries_send
from webhooks.services.queueing import deliveries_sweep

pytestmark = pytest.mark.django_db
ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.fixture(autouse=True)
def _eager(eager_tasks):
    """Queued delivery tasks run at once, in this process."""


def subscribed(url: str, **fields) -> tuple[Subscription, str]:
    subscription = SubscriptionFactory(url=url, **fields)
    return subscription, subscription_add_secret(subscription=subscription)


def pending(
    subscription: Subscription, event_id: str, *, source: str = "/test", **fields
) -> Delivery:
    """A pending delivery of the event ``source`` + ``event_id`` (``/test``: the source the
    store_event fixture stores)."""
    return Delivery.objects.create(
        event_id=event_id,
        event_source=source,
        event_type="payment.failed",
        subscription=subscription,
        next_attempt_at=timezone.now() + timedelta(seconds=60),
        **fields,
    )


def make_due(*deliveries: Delivery) -> None:
    Delivery.objects.filter(pk__in=[d.pk for d in deliveries]).update(
        next_attempt_at=timezone.now() - timedelta(seconds=1)
    )


def sweep(django_capture_on_commit_callbacks) -> int:
    """Run the sweeper and the tasks it queues (eagerly)."""
    with django_capture_on_commit_callbacks(execute=True):
        return deliveries_sweep()


def test_it_delivers_a_signed_event_the_official_library_verifies(receiver, store_event):
    subscription, secret = subscribed(receiver.url(), headers={"Authorization": "Bearer s3"})
    event_id = store_event(data={"amount": 12.5, "currency": "EUR"})
    delivery = pending(subscription, event_id, partition_key="user-1")

    assert deliveries_send(ids=[delivery.pk]) == 1

    (request,) = receiver.wait_for(1)
    payload = Webhook(secret).verify(request.body, request.headers)
    assert payload["id"] == event_id and payload["type"] == "payment.failed"
    assert payload["data"] == {"amount": 12.5, "currency": "EUR"}
    assert payload["specversion"] == "1.0" and payload["subject"] == "user-1"
    assert request.headers["webhook-id"] == f"msg_{delivery.pk}"
    assert request.headers["user-agent"].startswith("EventHub/")
    assert request.headers["authorization"] == "Bearer s3"
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.delivered_at is not None
    attempt = delivery.attempts_made.get()
    assert (attempt.number, attempt.response_status, attempt.response_body) == (1, 200, "ok")
    assert attempt.remote_address == "127.0.0.1"  # where it went, for the egress check
    # the subscription's own headers are credentials: masked in the attempt's record
    assert attempt.request_headers["authorization"] == "***"
    assert attempt.request_headers["webhook-id"] == f"msg_{delivery.pk}"
    subscription.refresh_from_db()
    assert subscription.last_success_at is not None and subscription.success_rate == 1.0


def test_it_retries_on_500_then_succeeds_with_the_same_webhook_id(
    receiver, store_event, django_capture_on_commit_callbacks
):
    subscription, secret = subscribed(receiver.url())
    receiver.reply("/hook", Reply(500, body=b"database down"))
    delivery = pending(subscription, store_event())

    deliveries_send(ids=[delivery.pk])
    delivery.refresh_from_db()
    assert delivery.status == "retrying" and delivery.last_status_code == 500
    assert "database down" in delivery.last_error
    wait = (delivery.next_attempt_at - timezone.now()).total_seconds()
    assert 3.5 <= wait <= 6.5  # the first step of the schedule, 5 s, with ±20 % jitter
    assert sweep(django_capture_on_commit_callbacks) == 0  # not due yet

    make_due(delivery)
    assert sweep(django_capture_on_commit_callbacks) == 1
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 2
    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == f"msg_{delivery.pk}"
    Webhook(secret).verify(second.body, second.headers)
    assert list(delivery.attempts_made.values_list("number", "error_class")) == [
        (1, "http_5xx"),
        (2, ""),
    ]
    subscription.refresh_from_db()
    assert subscription.consecutive_failures == 0 and subscription.success_rate == 0.5


def test_attempts_are_counted_by_outcome_and_error_class(receiver, store_event, dlq_topic):
    from prometheus_client import REGISTRY

    def value(name: str, **labels: str) -> float:
        return REGISTRY.get_sample_value(name, labels) or 0.0

    counted = {
        ("deliveries_total", "outcome", "retrying"): 1,
        ("deliveries_total", "outcome", "succeeded"): 1,
        ("deliveries_total", "outcome", "dead"): 1,
        ("delivery_attempts_total", "error_class", "http_5xx"): 1,
        ("delivery_attempts_total", "error_class", "http_4xx"): 1,
        ("delivery_attempts_total", "error_class", "none"): 1,
    }
    before = {key: value(key[0], **{key[1]: key[2]}) for key in counted}
    disabled = value("subscriptions_disabled_total")
    durations = value("delivery_duration_seconds_count")
    subscription, _ = subscribed(receiver.url())
    receiver.reply("/hook", Reply(503), Reply(200), Reply(410))
    for _ in range(3):
        deliveries_send(ids=[pending(subscription, store_event()).pk])

    after = {key: value(key[0], **{key[1]: key[2]}) for key in counted}
    assert {key: after[key] - before[key] for key in counted} == counted
    assert value("subscriptions_disabled_total") == disabled + 1  # by the 410
    assert value("delivery_duration_seconds_count") == durations + 3


def test_a_timeout_is_recorded_and_retried(receiver, store_event):
    subscription, _ = subscribed(receiver.url(), timeout_seconds=1)
    receiver.reply("/hook", Reply(200, delay=3))
    delivery = pending(subscription, store_event())

    started = time.monotonic()
    deliveries_send(ids=[delivery.pk])
    assert time.monotonic() - started < 2.5

    delivery.refresh_from_db()
    assert delivery.status == "retrying"
    attempt = delivery.attempts_made.get()
    assert attempt.error_class == "timeout" and attempt.response_status is None
    assert "no answer within 1 s" in delivery.last_error


def test_410_disables_the_subscription_and_the_delivery_goes_to_the_dlq(
    receiver, store_event, dlq_topic
):
    subscription, _ = subscribed(receiver.url())
    receiver.reply("/hook", Reply(410))
    event_id = store_event()
    delivery = pending(subscription, event_id)
    later = pending(subscription, store_event())

    deliveries_send(ids=[delivery.pk])

    delivery.refresh_from_db()
    subscription.refresh_from_db()
    assert delivery.status == "dead" and delivery.last_status_code == 410
    assert subscription.state == "disabled" and "410" in subscription.state_reason
    # what was queued for it is held, not sent and not dropped
    assert deliveries_send(ids=[later.pk]) == 0
    later.refresh_from_db()
    assert later.status == "held" and len(receiver.received) == 1

    (message,) = find_in_topic(dlq_topic, {event_id})[event_id]
    published = json.loads(message.value())
    assert published["delivery_id"] == delivery.pk
    assert published["subscription"]["id"] == subscription.pk
    assert published["event"]["id"] == event_id and published["last_status_code"] == 410
    # the message is what asyncapi.yaml documents
    spec = yaml.safe_load((ROOT / "asyncapi.yaml").read_text())
    schema = spec["components"]["messages"]["DeadDelivery"]["payload"]
    jsonschema.validate(published, {**schema, "components": spec["components"]})


def test_other_4xx_end_the_delivery_at_once(receiver, store_event):
    subscription, _ = subscribed(receiver.url())
    receiver.reply("/hook", Reply(400, body=b'{"error": "unknown field"}'))
    delivery = pending(subscription, store_event())

    deliveries_send(ids=[delivery.pk])

    delivery.refresh_from_db()
    assert delivery.status == "dead" and delivery.attempts == 1
    assert delivery.attempts_made.get().error_class == "http_4xx"
    assert "unknown field" in delivery.last_error


def test_429_retry_after_is_honoured_within_the_schedule(receiver, store_event):
    subscription, _ = subscribed(receiver.url(), retry_schedule=[5, 60, 600])
    receiver.reply(
        "/hook", Reply(429, headers={"Retry-After": "120"}), Reply(429, {"Retry-After": "99999"})
    )
    first, second = pending(subscription, store_event()), pending(subscription, store_event())

    deliveries_send(ids=[first.pk, second.pk])

    waits = sorted(
        round((d.next_attempt_at - timezone.now()).total_seconds())
        for d in Delivery.objects.filter(pk__in=[first.pk, second.pk])
    )
    assert waits[0] in (119, 120)  # Retry-After as asked
    assert waits[1] in (599, 600)  # clamped to the schedule's longest wait


def test_a_private_url_is_refused_at_send_time(receiver, store_event, settings):
    subscription, _ = subscribed(receiver.url())
    settings.WEBHOOK_ALLOWED_NETWORKS = []  # loopback is no longer allowed
    delivery = pending(subscription, store_event())

    deliveries_send(ids=[delivery.pk])

    delivery.refresh_from_db()
    assert delivery.status == "dead" and receiver.received == []
    assert delivery.attempts_made.get().error_class == "refused_url"
    assert "WEBHOOK_ALLOWED_NETWORKS" in delivery.last_error


def test_a_host_resolving_outside_the_egress_networks_is_refused_at_send_time(
    receiver, store_event, settings
):
    # saved while loopback was an egress network; "localhost" is resolved again at send time
    subscription, _ = subscribed(receiver.url().replace("127.0.0.1", "localhost"))
    settings.WEBHOOK_EGRESS_NETWORKS = ["192.0.2.0/24"]
    delivery = pending(subscription, store_event())

    deliveries_send(ids=[delivery.pk])

    delivery.refresh_from_db()
    assert delivery.status == "dead" and receiver.received == []
    attempt = delivery.attempts_made.get()
    assert attempt.error_class == "refused_url" and attempt.remote_address is None
    assert "outside WEBHOOK_EGRESS_NETWORKS" in delivery.last_error


def test_during_rotation_both_secrets_verify(receiver, store_event):
    subscription, old = subscribed(receiver.url())
    new = subscription_rotate_secret(subscription=subscription, overlap=timedelta(hours=1))
    delivery = pending(subscription, store_event())

    deliveries_send(ids=[delivery.pk])

    (request,) = receiver.wait_for(1)
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert Webhook(old).verify(request.body, request.headers)
    assert Webhook(new).verify(request.body, request.headers)


def test_after_the_overlap_only_the_new_secret_signs(receiver, store_event):
    subscription, old = subscribed(receiver.url())
    new = subscription_rotate_secret(subscription=subscription, overlap=timedelta(0))
    deliveries_send(ids=[pending(subscription, store_event()).pk])

    (request,) = receiver.wait_for(1)
    assert Webhook(new).verify(request.body, request.headers)
    with pytest.raises(Exception, match="No matching signature"):
        Webhook(old).verify(request.body, request.headers)


def test_cloudevents_subscriptions_get_binary_mode_headers(receiver, store_event):
    subscription, secret = subscribed(receiver.url(), output_format="cloudevents")
    event_id = store_event(data={"amount": 7})
    deliveries_send(ids=[pending(subscription, event_id).pk])

    (request,) = receiver.wait_for(1)
    assert json.loads(request.body) == {"amount": 7}
    assert request.headers["ce-id"] == event_id
    assert request.headers["ce-type"] == "payment.failed"
    assert request.headers["ce-specversion"] == "1.0"
    assert Webhook(secret).verify(request.body, request.headers) == {"amount": 7}


def test_the_rate_limit_spreads_deliveries_and_fails_none(
    receiver, store_event, clean_redis, django_capture_on_commit_callbacks
):
    subscription, _ = subscribed(receiver.url(), rate_limit_per_second=4)
    deliveries = [pending(subscription, store_event()) for _ in range(12)]

    assert deliveries_send(ids=[d.pk for d in deliveries]) == 4
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and len(receiver.received) < 12:
        sweep(django_capture_on_commit_callbacks)
        time.sleep(0.1)

    received = receiver.wait_for(12)
    assert len(received) == 12
    assert Delivery.objects.filter(status="succeeded").count() == 12
    span = received[-1].at - received[0].at
    assert span >= 1.5  # 12 at 4/s with a burst of 4: about 2 s
    # waiting for a token is not an attempt
    assert set(Delivery.objects.values_list("attempts", flat=True)) == {1}


def test_an_ordered_key_waits_while_another_key_flows(
    receiver, store_event, django_capture_on_commit_callbacks
):
    subscription, _ = subscribed(receiver.url(), ordered=True)
    receiver.reply("/hook", Reply(503))  # the first request, a1, fails
    a1 = pending(subscription, store_event(subject="a"), partition_key="a")
    a2 = pending(subscription, store_event(subject="a"), partition_key="a")
    b1 = pending(subscription, store_event(subject="b"), partition_key="b")
    b2 = pending(subscription, store_event(subject="b"), partition_key="b")

    with django_capture_on_commit_callbacks(execute=True):
        # a1 alone first: a batch sends its requests concurrently, so in one batch b1's
        # request could reach the receiver first and take the scripted 503
        deliveries_send(ids=[a1.pk])
        deliveries_send(ids=[a1.pk, a2.pk, b1.pk, b2.pk])

    statuses = dict(Delivery.objects.values_list("id", "status"))
    assert statuses[a1.pk] == "retrying"
    assert statuses[a2.pk] == "pending"  # held back behind a1
    assert statuses[b1.pk] == statuses[b2.pk] == "succeeded"  # b went on, in order
    ids = [r.headers["webhook-id"] for r in receiver.received]
    assert ids.index(f"msg_{b1.pk}") < ids.index(f"msg_{b2.pk}")

    make_due(a1, a2)
    sweep(django_capture_on_commit_callbacks)
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}
    sent = [r.headers["webhook-id"] for r in receiver.received]
    assert sent.index(f"msg_{a1.pk}", 1) < sent.index(f"msg_{a2.pk}")


def test_replay_from_the_dlq_delivers_again_with_the_same_webhook_id(
    receiver, store_event, dlq_topic, django_capture_on_commit_callbacks
):
    subscription, secret = subscribed(receiver.url(), retry_schedule=[])
    receiver.reply("/hook", Reply(503))
    delivery = pending(subscription, store_event())
    deliveries_send(ids=[delivery.pk])
    delivery.refresh_from_db()
    assert delivery.status == "dead"  # an empty schedule: no retry

    assert deliveries_replay(since=timedelta(hours=2), dry_run=True) == 1
    with django_capture_on_commit_callbacks(execute=True):
        assert deliveries_replay(since=timedelta(hours=2), actor_label="ops") == 1

    first, second = receiver.wait_for(2)
    assert first.headers["webhook-id"] == second.headers["webhook-id"] == f"msg_{delivery.pk}"
    Webhook(secret).verify(second.body, second.headers)
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 2
    from accounts.models import AuditLog

    audit = AuditLog.objects.get(action="delivery.replay")
    assert audit.changes["count"] == 1 and audit.actor_label == "ops"


def test_the_circuit_breaker_disables_and_release_sends_what_was_held(
    receiver, store_event, settings, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_BREAKER_FAILURES = 3
    settings.WEBHOOK_BREAKER_SECONDS = 0
    subscription, _ = subscribed(receiver.url())
    receiver.reply("/hook", *[Reply(500)] * 3)
    failing = [pending(subscription, store_event()) for _ in range(3)]

    deliveries_send(ids=[d.pk for d in failing])

    subscription.refresh_from_db()
    assert subscription.state == "disabled" and subscription.consecutive_failures == 3
    assert "3 failed attempts in a row" in subscription.state_reason
    waiting = pending(subscription, store_event())
    assert deliveries_send(ids=[waiting.pk]) == 0
    waiting.refresh_from_db()
    assert waiting.status == "held"

    subscription.resume()
    with django_capture_on_commit_callbacks(execute=True):
        assert subscription_release_held(subscription=subscription) == 1
    waiting.refresh_from_db()
    assert waiting.status == "succeeded"


def test_a_test_event_is_sent_at_once_and_never_retried(receiver):
    subscription, secret = subscribed(receiver.url(), state="paused")
    receiver.reply("/hook", Reply(500))

    delivery = subscription_send_test(subscription=subscription)

    assert delivery.is_test and delivery.status == "dead" and delivery.attempts == 1
    (request,) = receiver.wait_for(1)
    assert Webhook(secret).verify(request.body, request.headers)["type"] == "eventhub.test"
    assert DeliveryAttempt.objects.get(delivery=delivery).response_status == 500
    subscription.refresh_from_db()
    assert subscription.attempts_total == 0  # a test does not count against the endpoint


def test_a_claimed_delivery_is_sent_once_even_if_queued_twice(receiver, store_event):
    subscription, _ = subscribed(receiver.url())
    delivery = pending(subscription, store_event())

    assert deliveries_send(ids=[delivery.pk]) == 1
    assert deliveries_send(ids=[delivery.pk]) == 0
    assert len(receiver.wait_for(1)) == 1


def test_a_worker_that_died_mid_send_is_taken_over_by_the_sweeper(
    receiver, store_event, django_capture_on_commit_callbacks
):
    subscription, _ = subscribed(receiver.url())
    delivery = pending(subscription, store_event())
    # as a worker that claimed it and died leaves it: in flight, its lease lapsed
    Delivery.objects.filter(pk=delivery.pk).update(
        status="in_flight", attempts=1, next_attempt_at=timezone.now() - timedelta(seconds=1)
    )

    assert sweep(django_capture_on_commit_callbacks) == 1

    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and len(receiver.received) == 1


def test_when_the_broker_lost_its_queue_the_sweeper_queues_every_pending_delivery(
    receiver, store_event, django_capture_on_commit_callbacks
):
    """A pending delivery waits for its task until its lease lapses. When Redis restarted
    without persistence (its queue mark is gone), the next sweep queues it at once."""
    from core.redis import get_broker_redis
    from webhooks.services.queueing import QUEUE_MARK

    subscription, _ = subscribed(receiver.url())
    delivery = pending(subscription, store_event())  # its task queued, due again in 60 s
    assert sweep(django_capture_on_commit_callbacks) == 0  # the queue is there: it waits

    get_broker_redis().delete(QUEUE_MARK)  # what a restart without persistence leaves
    try:
        assert sweep(django_capture_on_commit_callbacks) == 1
    finally:
        assert get_broker_redis().exists(QUEUE_MARK)  # marked again by that sweep
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and len(receiver.received) == 1
    assert sweep(django_capture_on_commit_callbacks) == 0


def test_deliveries_the_broker_did_not_take_are_due_in_seconds(
    receiver, store_event, monkeypatch, django_capture_on_commit_callbacks
):
    """Redis down when the pipeline commits its deliveries: the batch stands (no error), and
    its deliveries are due to the sweeper in seconds rather than when their lease lapses."""
    from kombu.exceptions import OperationalError

    from webhooks import tasks
    from webhooks.services.queueing import RELEASE_SECONDS, deliveries_enqueue_on_commit

    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    subscription, _ = subscribed(receiver.url())
    delivery = pending(subscription, store_event())
    monkeypatch.setattr(tasks.deliver, "delay", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        deliveries_enqueue_on_commit([(delivery.pk, subscription.pk)])

    delivery.refresh_from_db()
    assert delivery.status == "pending"
    assert delivery.next_attempt_at <= timezone.now() + timedelta(seconds=RELEASE_SECONDS)
    monkeypatch.undo()  # the broker is back
    time.sleep(RELEASE_SECONDS)
    assert sweep(django_capture_on_commit_callbacks) == 1
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and len(receiver.received) == 1


def test_a_batch_postgresql_did_not_take_is_tried_again_within_seconds(
    receiver, store_event, monkeypatch
):
    """PostgreSQL restarting when a ``deliver`` task runs: the task is tried again (its
    deliveries are still pending), not dropped to wait a lease for the sweeper."""
    from django.db import OperationalError

    from webhooks import tasks

    subscription, _ = subscribed(receiver.url())
    delivery = pending(subscription, store_event())
    tries = []

    def restarting(**kwargs):
        tries.append(kwargs["ids"])
        if len(tries) == 1:
            raise OperationalError("terminating connection due to administrator command")
        return deliveries_send(**kwargs)

    monkeypatch.setattr(tasks, "deliveries_send", restarting)
    tasks.deliver.delay([delivery.pk])  # eager: the retry runs at once, here

    assert tries == [[delivery.pk], [delivery.pk]]
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and len(receiver.wait_for(1)) == 1


def test_claims_are_given_back_when_mongodb_is_down(receiver, store_event, settings):
    """A batch that cannot load its events sends nothing; its claims are pending again at
    once, due in seconds (not when their lease lapses), and count as no attempt."""
    from pymongo.errors import ServerSelectionTimeoutError

    from core import mongo

    subscription, _ = subscribed(receiver.url())
    delivery = pending(subscription, store_event())
    good = settings.MONGO_URL
    settings.MONGO_URL = "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200"
    mongo.close_client()
    try:
        with pytest.raises(ServerSelectionTimeoutError):
            deliveries_send(ids=[delivery.pk])
    finally:
        settings.MONGO_URL = good
        mongo.close_client()

    delivery.refresh_from_db()
    assert delivery.status == "pending" and delivery.attempts == 0
    assert delivery.next_attempt_at <= timezone.now() + timedelta(seconds=3)
    assert not receiver.received
    assert deliveries_send(ids=[delivery.pk]) == 1  # MongoDB back: it goes out
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 1


def test_a_request_that_waited_past_half_its_lease_is_given_back_unsent(
    receiver, store_event, settings
):
    """One connection to the endpoint and a slow first answer: the second request waits for
    the connection longer than half its claim's lease. It is not started (its claim could
    lapse and the sweeper send it again while it is in flight): pending again, no attempt."""
    settings.WEBHOOK_MAX_PER_ENDPOINT = 1
    settings.WEBHOOK_LEASE_SECONDS = 5  # started within 2.5 s, or not at all
    subscription, _ = subscribed(receiver.url(), timeout_seconds=10)
    first, second = (pending(subscription, store_event()) for _ in range(2))
    receiver.reply("/hook", Reply(delay=4))

    assert deliveries_send(ids=[first.pk, second.pk]) == 2

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.status == "succeeded" and first.attempts == 1
    assert second.status == "pending" and second.attempts == 0
    assert not DeliveryAttempt.objects.filter(delivery=second).exists()
    assert [r.headers["webhook-id"] for r in receiver.received] == [first.message_id]
    assert deliveries_send(ids=[second.pk]) == 1  # given back: the next task sends it
    second.refresh_from_db()
    assert second.status == "succeeded" and second.attempts == 1
