"""The console's pages that join several apps: a subscription's filter checked against its
types' examples and counted over the stored events of the last 7 days (real MongoDB)."""

from __future__ import annotations

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
