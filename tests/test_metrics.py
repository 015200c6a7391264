"""The web's /metrics: the names the dashboards and alerts read, with values that follow what
happened (a request, an event accepted or refused, a MongoDB read, an error logged, deliveries
waiting), against the real services."""

from __future__ import annotations

import json
import logging
from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from tests.subscriptions.factories import SubscriptionFactory
from webhooks.models import Delivery

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_type", "clean_redis")]

EVENT = {"event_type": "payment.failed", "user_id": "u", "amount": 1, "data": {"currency": "EUR"}}


def scrape(client) -> dict[tuple[str, tuple], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def publish(client, credentials, body) -> int:
    return client.post(
        "/api/v1/events",
        json.dumps(body),
        content_type="application/json",
        **credentials["writer"],
    ).status_code


def test_requests_are_counted_by_view_and_status_with_a_request_id(client, credentials):
    labels = {"method": "GET", "view": "event-type-list", "status": "200"}
    before = value("http_requests_total", **labels)
    response = client.get(
        "/api/v1/event-types", HTTP_X_REQUEST_ID="req-42", **credentials["reader"]
    )
    assert response["X-Request-ID"] == "req-42"
    assert value("http_requests_total", **labels) == before + 1
    # a request id that is no short token is replaced by one of ours
    response = client.get("/health", HTTP_X_REQUEST_ID="two\nlines")
    assert response["X-Request-ID"] != "two\nlines" and len(response["X-Request-ID"]) == 32
    samples = scrape(client)
    assert samples[("http_requests_total", tuple(sorted(labels.items())))] >= before + 1


def test_accepted_and_refused_events_are_counted_by_type_door_and_reason(client, credentials):
    accepted = {"type": "payment.failed", "door": "rest"}
    before = value("events_ingested_total", **accepted)
    invalid_before = value("events_rejected_total", reason="invalid")
    unknown_before = value("events_rejected_total", reason="unknown_type")
    assert publish(client, credentials, EVENT) == 202
    assert publish(client, credentials, {**EVENT, "amount": -5}) == 422
    assert publish(client, credentials, {**EVENT, "event_type": "no.such"}) == 422
    assert value("events_ingested_total", **accepted) == before + 1
    assert value("events_rejected_total", reason="invalid") == invalid_before + 1
    assert value("events_rejected_total", reason="unknown_type") == unknown_before + 1


def test_mongodb_commands_are_counted_by_name(client, credentials, mongo_db):
    before = value("mongo_ops_total", op="find")
    assert client.get("/api/v1/events", **credentials["reader"]).status_code == 200
    assert value("mongo_ops_total", op="find") >= before + 1


def test_errors_logged_are_counted_by_component():
    before = value("errors_total", component="webhooks")
    logging.getLogger("webhooks.sender").error("the sender could not start")
    logging.getLogger("webhooks.sender").warning("a warning is no error")
    assert value("errors_total", component="webhooks") == before + 1


def test_the_backlog_counts_what_waits_and_the_age_of_the_oldest_due(client, db):
    subscription = SubscriptionFactory(url="http://127.0.0.1:9/hook")
    now = timezone.now()

    def delivery(status: str, **fields) -> Delivery:
        return Delivery.objects.create(
            event_id=f"e-{Delivery.objects.count()}",
            event_source="/test",
            event_type="payment.failed",
            subscription=subscription,
            status=status,
            **fields,
        )

    assert scrape(client)[("delivery_oldest_due_age_seconds", ())] == 0
    fresh = delivery("pending", next_attempt_at=now + timedelta(seconds=60))
    delivery("retrying", next_attempt_at=now + timedelta(hours=1))  # not due yet
    overdue = delivery("retrying", next_attempt_at=now - timedelta(seconds=300))
    delivery("held")
    Delivery.objects.filter(pk=fresh.pk).update(updated_at=now - timedelta(seconds=30))

    samples = scrape(client)
    assert samples[("deliveries_waiting", (("status", "pending"),))] == 1
    assert samples[("deliveries_waiting", (("status", "retrying"),))] == 2
    assert samples[("deliveries_waiting", (("status", "held"),))] == 1
    assert samples[("deliveries_waiting", (("status", "in_flight"),))] == 0
    # the overdue retry fell due 300 s ago; the pending one has waited 30 s
    assert 299 <= samples[("delivery_oldest_due_age_seconds", ())] < 330
    Delivery.objects.filter(pk=overdue.pk).update(status="succeeded", delivered_at=now)
    assert 29 <= scrape(client)[("delivery_oldest_due_age_seconds", ())] < 60


def test_the_uptime_names_the_service(client, settings):
    settings.SERVICE_NAME = "eventhub-web"
    samples = scrape(client)
    assert samples[("service_uptime_seconds", (("service", "eventhub-web"),))] > 0


def test_a_task_lost_again_and_again_keeps_its_age(client, db, django_capture_on_commit_callbacks):
    """The sweeper queues a lost task again (here: the task never runs, as when Redis loses
    it); the delivery keeps the time it became pending, so the age keeps growing."""
    from webhooks.services.queueing import deliveries_sweep

    subscription = SubscriptionFactory(url="http://127.0.0.1:9/hook")
    now = timezone.now()
    lost = Delivery.objects.create(
        event_id="lost",
        event_source="/test",
        event_type="payment.failed",
        subscription=subscription,
        next_attempt_at=now - timedelta(seconds=1),
    )
    retry = Delivery.objects.create(
        event_id="retry",
        event_source="/test",
        event_type="payment.failed",
        subscription=subscription,
        status="retrying",
        next_attempt_at=now - timedelta(seconds=1),
    )
    Delivery.objects.filter(pk=lost.pk).update(updated_at=now - timedelta(seconds=600))
    with django_capture_on_commit_callbacks(execute=False):
        assert deliveries_sweep() == 2
    lost.refresh_from_db()
    retry.refresh_from_db()
    assert lost.status == retry.status == "pending"
    assert (now - lost.updated_at).total_seconds() >= 600  # kept
    assert abs((retry.updated_at - timezone.now()).total_seconds()) < 5  # pending from now
    assert 600 <= scrape(client)[("delivery_oldest_due_age_seconds", ())] < 660


def test_dependencies_are_up_and_one_that_stops_answering_is_down(client, settings, free_port):
    samples = scrape(client)
    for name in ("postgres", "redis", "kafka", "mongodb"):
        assert samples[("dependency_up", (("dependency", name),))] == 1, name
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port}/0"
    settings.HEALTH_CHECK_TIMEOUT = 0.5
    samples = scrape(client)
    assert samples[("dependency_up", (("dependency", "redis"),))] == 0
    assert samples[("dependency_up", (("dependency", "kafka"),))] == 1


def test_events_the_broker_does_not_take_are_counted(
    client, credentials, settings, free_port, fresh_kafka_clients
):
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{free_port}"
    settings.KAFKA_MESSAGE_TIMEOUT_MS = 500
    before = value("events_rejected_total", reason="broker")
    assert publish(client, credentials, EVENT) == 503
    assert value("events_rejected_total", reason="broker") == before + 1
