"""The deliveries API: listing and inspecting deliveries, retry and replay, against the real
PostgreSQL, MongoDB and Redis, with a real HTTP receiver for the sends."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import AuditLog
from subscriptions.models import Subscription
from subscriptions.services import subscription_add_secret
from tests.helpers import Reply
from tests.subscriptions.factories import SubscriptionFactory
from tests.webhooks.factories import DeliveryAttemptFactory, DeliveryFactory
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


def hooked(url: str) -> Subscription:
    subscription = SubscriptionFactory(url=url)
    subscription_add_secret(subscription=subscription)
    return subscription


def dead(subscription: Subscription, **fields) -> Delivery:
    return DeliveryFactory(
        subscription=subscription, status="dead", attempts=3, last_error="HTTP 500", **fields
    )


def died_ago(delivery: Delivery, age: timedelta) -> None:
    Delivery.objects.filter(pk=delivery.pk).update(updated_at=timezone.now() - age)


def ids(response) -> list[int]:
    return [item["id"] for item in response.json()["results"]]


# --- reading -----------------------------------------------------------------------------------


def test_reader_lists_deliveries_newest_first(client, credentials):
    first, second, third = DeliveryFactory(), DeliveryFactory(), DeliveryFactory()
    response = client.get("/api/v1/deliveries", **credentials["reader"])
    assert response.status_code == 200
    assert ids(response) == [third.pk, second.pk, first.pk]
    item = response.json()["results"][0]
    assert item["message_id"] == f"msg_{third.pk}"
    assert item["subscription"] == third.subscription_id
    assert "attempts_made" not in item


@pytest.mark.parametrize(
    "query, expected",
    [
        ({"status": "dead"}, ["dead"]),
        ({"event_type": "order.created"}, ["order"]),
        ({"subscription": "SUB"}, ["dead", "order"]),
        ({"event_id": "evt-42"}, ["order"]),
    ],
)
def test_deliveries_filter_by_status_subscription_type_and_event(
    client, credentials, query, expected
):
    subscription = SubscriptionFactory()
    made = {
        "dead": dead(subscription),
        "order": DeliveryFactory(
            subscription=subscription, event_type="order.created", event_id="evt-42"
        ),
        "other": DeliveryFactory(status="succeeded", delivered_at=timezone.now()),
    }
    query = {k: subscription.pk if v == "SUB" else v for k, v in query.items()}
    response = client.get("/api/v1/deliveries", query, **credentials["reader"])
    assert response.status_code == 200
    assert sorted(ids(response)) == sorted(made[name].pk for name in expected)


def test_an_unknown_status_filter_is_a_400_problem(client, credentials):
    response = client.get("/api/v1/deliveries", {"status": "lost"}, **credentials["reader"])
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert response.json()["errors"][0]["pointer"] == "/status"


def test_the_list_is_paged_by_limit_and_cursor(client, credentials):
    made = [DeliveryFactory() for _ in range(5)]
    newest_first = [d.pk for d in reversed(made)]
    page = client.get("/api/v1/deliveries", {"limit": 2}, **credentials["reader"])
    assert ids(page) == newest_first[:2]
    cursor = page.json()["next"]
    assert not cursor.startswith("http")  # a bare cursor, as on every list, not a URL
    following = client.get(
        "/api/v1/deliveries", {"limit": 2, "cursor": cursor}, **credentials["reader"]
    )
    assert ids(following) == newest_first[2:4]


def test_anonymous_callers_cannot_list_deliveries(client):
    response = client.get("/api/v1/deliveries")
    assert response.status_code == 401
    assert response["Content-Type"] == PROBLEM


def test_a_delivery_shows_its_attempts_inline(client, credentials):
    delivery = dead(SubscriptionFactory())
    traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    Delivery.objects.filter(pk=delivery.pk).update(traceparent=traceparent)
    DeliveryAttemptFactory(delivery=delivery, number=1, response_status=500, error_class="http_5xx")
    DeliveryAttemptFactory(delivery=delivery, number=2, response_status=503, error_class="http_5xx")
    response = client.get(f"/api/v1/deliveries/{delivery.pk}", **credentials["reader"])
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "dead" and body["last_error"] == "HTTP 500"
    assert body["traceparent"] == traceparent
    assert [(a["number"], a["response_status"]) for a in body["attempts_made"]] == [
        (1, 500),
        (2, 503),
    ]


def test_an_unknown_delivery_is_a_404_problem(client, credentials):
    response = client.get("/api/v1/deliveries/999999999", **credentials["reader"])
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM


# --- retry -------------------------------------------------------------------------------------


def test_admin_retry_sends_a_dead_delivery_again_with_the_same_webhook_id(
    client, credentials, receiver, store_event, eager_tasks, django_capture_on_commit_callbacks
):
    delivery = dead(hooked(receiver.url()), event_id=store_event())
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(f"/api/v1/deliveries/{delivery.pk}/retry", **credentials["admin"])
    assert response.status_code == 202
    assert response.json()["id"] == delivery.pk and response.json()["status"] == "pending"
    (request,) = receiver.wait_for(1)
    assert request.headers["webhook-id"] == f"msg_{delivery.pk}"
    delivery.refresh_from_db()
    assert delivery.status == "succeeded" and delivery.attempts == 4
    audit = AuditLog.objects.get(action="delivery.retry", object_id=str(delivery.pk))
    assert audit.actor_label == "test-admin" and audit.changes["status"] == ["dead", "pending"]


def test_retrying_a_succeeded_delivery_is_a_409_problem(client, credentials):
    delivery = DeliveryFactory(status="succeeded", delivered_at=timezone.now())
    response = client.post(f"/api/v1/deliveries/{delivery.pk}/retry", **credentials["admin"])
    assert response.status_code == 409
    assert response["Content-Type"] == PROBLEM
    assert response.json()["type"].endswith("/delivery-not-retryable")
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"


@pytest.mark.parametrize("caller", ["reader", "writer"])
def test_only_admins_retry(client, credentials, caller):
    delivery = dead(SubscriptionFactory())
    response = client.post(f"/api/v1/deliveries/{delivery.pk}/retry", **credentials[caller])
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    delivery.refresh_from_db()
    assert delivery.status == "dead"


# --- replay ------------------------------------------------------------------------------------


def replay(client, credentials, body: dict, caller: str = "admin"):
    return client.post(
        "/api/v1/deliveries/replay", body, content_type="application/json", **credentials[caller]
    )


def test_replay_queues_the_dead_deliveries_of_the_window_and_audits_it(client, credentials):
    subscription = SubscriptionFactory()
    recent, old = dead(subscription), dead(subscription)
    died_ago(old, timedelta(hours=3))
    succeeded = DeliveryFactory(
        subscription=subscription, status="succeeded", delivered_at=timezone.now()
    )

    response = replay(client, credentials, {"since": "2h"})

    assert response.status_code == 200
    assert response.json() == {"count": 1, "dry_run": False}
    statuses = dict(Delivery.objects.values_list("id", "status"))
    assert statuses == {recent.pk: "pending", old.pk: "dead", succeeded.pk: "succeeded"}
    audit = AuditLog.objects.get(action="delivery.replay")
    assert audit.actor_label == "test-admin"
    assert audit.changes["count"] == 1 and audit.changes["since_seconds"] == 7200


def test_replay_dry_run_counts_and_changes_nothing(client, credentials):
    subscription = SubscriptionFactory()
    dead(subscription), dead(subscription)
    response = replay(client, credentials, {"since": 3600, "dry_run": True})
    assert response.json() == {"count": 2, "dry_run": True}
    assert set(Delivery.objects.values_list("status", flat=True)) == {"dead"}
    assert not AuditLog.objects.filter(action="delivery.replay").exists()


def test_replay_filters_by_subscription_and_event_type(client, credentials):
    one, other = SubscriptionFactory(), SubscriptionFactory()
    wanted = dead(one, event_type="order.created")
    dead(one, event_type="payment.failed")
    dead(other, event_type="order.created")
    response = replay(
        client,
        credentials,
        {"since": "1d", "subscription": one.pk, "event_type": "order.created"},
    )
    assert response.json()["count"] == 1
    assert list(Delivery.objects.filter(status="pending").values_list("id", flat=True)) == [
        wanted.pk
    ]


def test_replayed_deliveries_are_sent_again(
    client, credentials, receiver, store_event, eager_tasks, django_capture_on_commit_callbacks
):
    subscription = hooked(receiver.url())
    deliveries = [dead(subscription, event_id=store_event()) for _ in range(3)]
    with django_capture_on_commit_callbacks(execute=True):
        response = replay(client, credentials, {"since": "30m"})
    assert response.json()["count"] == 3
    received = receiver.wait_for(3)
    assert sorted(r.headers["webhook-id"] for r in received) == sorted(
        f"msg_{d.pk}" for d in deliveries
    )
    assert set(Delivery.objects.values_list("status", flat=True)) == {"succeeded"}


def test_replayed_deliveries_that_fail_again_go_back_to_retrying(
    client, credentials, receiver, store_event, eager_tasks, django_capture_on_commit_callbacks
):
    subscription = hooked(receiver.url())
    delivery = dead(subscription, event_id=store_event())
    receiver.reply("/hook", Reply(503))
    with django_capture_on_commit_callbacks(execute=True):
        replay(client, credentials, {"since": "30m"})
    receiver.wait_for(1)
    delivery.refresh_from_db()
    # the retry schedule starts over: the first retry of the subscription's schedule is next
    assert delivery.status == "retrying" and delivery.attempts == 4
    assert delivery.last_status_code == 503


@pytest.mark.parametrize(
    "body, pointer",
    [
        ({"since": "soon"}, "/since"),
        ({"since": "0s"}, "/since"),
        ({"since": -5}, "/since"),
        ({"since": True}, "/since"),
        ({}, "/since"),
        ({"since": "2h", "status": "succeeded"}, "/status"),
        ({"since": "2h", "dry_run": "perhaps"}, "/dry_run"),
        ({"since": "2h", "dry_run": "true"}, "/dry_run"),  # JSON: a string is no boolean
    ],
)
def test_a_bad_replay_request_is_a_400_problem_pointing_at_the_field(
    client, credentials, body, pointer
):
    dead(SubscriptionFactory())
    response = replay(client, credentials, body)
    assert response.status_code == 400
    assert response["Content-Type"] == PROBLEM
    assert [e["pointer"] for e in response.json()["errors"]] == [pointer]
    assert Delivery.objects.get().status == "dead"


def test_a_replay_of_a_subscription_that_does_not_exist_is_a_422(client, credentials):
    dead(SubscriptionFactory())
    response = replay(client, credentials, {"since": "2h", "subscription": 999999999})
    assert response.status_code == 422
    assert response.json()["type"].endswith("/unknown-reference")
    assert [e["pointer"] for e in response.json()["errors"]] == ["/subscription"]
    assert Delivery.objects.get().status == "dead"


@pytest.mark.parametrize("caller", ["anonymous", "reader", "writer"])
def test_only_admins_replay(client, credentials, caller):
    dead(SubscriptionFactory())
    response = replay(client, credentials, {"since": "2h"}, caller=caller)
    assert response.status_code in (401, 403)
    assert response["Content-Type"] == PROBLEM
    assert Delivery.objects.get().status == "dead"
