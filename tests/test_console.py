"""The console's pages that join several apps: a subscription's filter checked against its
types' examples and counted over the stored events of the last 7 days (real MongoDB)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse

from tests.subscriptions.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def recent_events(store_event):
    now = datetime.now(tz=UTC).isoformat()
    for amount in [5, 5, 5, 50, 50]:
        store_event(time=now, data={"amount": amount, "currency": "EUR"})
    store_event(time=now, type="order.created", data={"amount": 50})
    store_event(time="2026-01-01T00:00:00Z", data={"amount": 50, "currency": "EUR"})  # too old


def change_page(client, subscription) -> str:
    url = reverse("admin:subscriptions_subscription_change", args=[subscription.pk])
    return client.get(url).content.decode()


def test_the_change_page_tries_the_filter_on_the_example_and_counts_the_last_7_days(
    admin_client_logged_in, event_type, recent_events
):
    subscription = SubscriptionFactory(
        event_types=["payment.*"], filter={"payload.amount": {"$gte": 10}}
    )
    page = change_page(admin_client_logged_in, subscription)
    assert "payment.failed: the filter refuses its example." in page  # the example's amount is 1
    assert "Last 7 days: 2 of the 5 stored events of its types pass its filter." in page


def test_without_a_filter_every_event_of_its_types_counts(
    admin_client_logged_in, event_type, recent_events
):
    subscription = SubscriptionFactory(event_types=["*"], filter=None)
    page = change_page(admin_client_logged_in, subscription)
    assert "payment.failed: its example is accepted (no filter)." in page
    assert "Last 7 days: 6 of the 6 stored events of its types pass its filter." in page


def test_saving_a_new_filter_reports_the_check(admin_client_logged_in, event_type, recent_events):
    subscription = SubscriptionFactory(event_types=["payment.failed"], filter=None)
    url = reverse("admin:subscriptions_subscription_change", args=[subscription.pk])
    form = {
        "subscriber": subscription.subscriber_id,
        "name": subscription.name,
        "url": subscription.url,
        "event_types": "payment.failed",
        "filter": '{"payload.amount": {"$lt": 10}}',
        "state": "active",
        "retry_schedule": "5,60",
        "timeout_seconds": 10,
        "headers": "{}",
        "output_format": "standard-webhooks",
        "secrets-TOTAL_FORMS": 0,
        "secrets-INITIAL_FORMS": 0,
    }
    response = admin_client_logged_in.post(url, form)
    assert response.status_code == 302, response.content.decode()[:3000]
    (report,) = [str(m) for m in get_messages(response.wsgi_request) if "Filter of" in str(m)]
    assert "payment.failed: the filter accepts its example." in report
    assert "3 of the 5 stored events" in report


def test_a_filter_with_a_fault_is_refused_with_its_path(admin_client_logged_in, event_type):
    subscription = SubscriptionFactory(event_types=["payment.failed"], filter=None)
    url = reverse("admin:subscriptions_subscription_change", args=[subscription.pk])
    response = admin_client_logged_in.post(
        url,
        {
            "subscriber": subscription.subscriber_id,
            "url": subscription.url,
            "event_types": "payment.failed",
            "filter": '{"$or": [{"payload.amount": {"$bogus": 1}}]}',
            "state": "active",
            "retry_schedule": "5",
            "timeout_seconds": 10,
            "headers": "{}",
            "output_format": "standard-webhooks",
            "secrets-TOTAL_FORMS": 0,
            "secrets-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200
    assert "$or/0/payload.amount/$bogus: unknown operator $bogus" in response.content.decode()


EVENT_TYPE_FORM = {
    "name": "payment.failed",
    "description": "",
    "enabled": "on",
    "retention_days": 30,
    "schema": json.dumps(
        {
            "type": "object",
            "required": ["amount"],
            "properties": {"amount": {"type": "number", "minimum": 0}},
        }
    ),
    "example": '{"amount": 3}',
}


def test_event_types_show_their_events_of_the_last_24_hours(
    admin_client_logged_in, event_type, recent_events
):
    response = admin_client_logged_in.get(reverse("admin:events_eventtype_changelist"))
    (row,) = response.context["cl"].result_list
    assert row.name == "payment.failed"
    assert '<td class="field-events_24h">5</td>' in response.content.decode()


def test_a_schema_change_raises_the_version_and_a_tried_payload_is_checked(
    admin_client_logged_in, event_type
):
    url = reverse("admin:events_eventtype_change", args=[event_type.pk])
    bad = {**EVENT_TYPE_FORM, "try_payload": '{"amount": -1}'}
    page = admin_client_logged_in.post(url, bad)
    assert page.status_code == 200  # refused, nothing saved
    assert "/amount: -1 is less than the minimum of 0" in page.content.decode()
    event_type.refresh_from_db()
    assert event_type.schema_version == 1
    good = {**EVENT_TYPE_FORM, "try_payload": '{"amount": 7}'}
    response = admin_client_logged_in.post(url, good)
    assert response.status_code == 302
    event_type.refresh_from_db()
    assert event_type.schema_version == 2
    assert "The payload tried satisfies the schema of payment.failed (version 2)." in [
        str(m) for m in get_messages(response.wsgi_request)
    ]


def test_an_example_that_fails_its_schema_is_refused_with_the_pointer(
    admin_client_logged_in, event_type
):
    url = reverse("admin:events_eventtype_change", args=[event_type.pk])
    page = admin_client_logged_in.post(url, {**EVENT_TYPE_FORM, "example": '{"amount": "x"}'})
    assert page.status_code == 200
    assert "/amount: &#x27;x&#x27; is not of type &#x27;number&#x27;" in page.content.decode()
    bad_schema = {**EVENT_TYPE_FORM, "schema": '{"type": "nothing"}'}
    page = admin_client_logged_in.post(url, bad_schema).content.decode()
    assert "is not valid under any of the given schemas (at /type)" in page
