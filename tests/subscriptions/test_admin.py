"""The subscription admin's health columns and filter, and its operator actions."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditLog
from subscriptions.models import Subscription
from subscriptions.services import subscription_add_secret
from tests.subscriptions.factories import SubscriptionFactory
from tests.webhooks.factories import DeliveryFactory
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:subscriptions_subscription_changelist")


@pytest.fixture
def endpoint_url() -> Iterator[str]:
    """A loopback endpoint answering 204 to every POST."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/hook"
    server.shutdown()
    server.server_close()


def run_action(client, action: str, subscriptions: list[Subscription]) -> list[str]:
    response = client.post(
        CHANGELIST, {"action": action, "_selected_action": [s.pk for s in subscriptions]}
    )
    assert response.status_code == 302
    return [str(m) for m in get_messages(response.wsgi_request)]


def test_the_changelist_shows_health_columns(admin_client_logged_in):
    subscription = SubscriptionFactory()
    Subscription.objects.filter(pk=subscription.pk).update(
        attempts_total=8, attempts_succeeded=6, consecutive_failures=2
    )
    page = admin_client_logged_in.get(CHANGELIST, {"o": "7"}).content.decode()
    assert "75.0%" in page
    assert "success rate" in page.lower() and "consecutive failures" in page.lower()


@pytest.mark.parametrize(
    "health, expected", [("failing", "failing"), ("disabled", "disabled"), ("healthy", "healthy")]
)
def test_the_health_filter(admin_client_logged_in, health, expected):
    made = {
        "failing": SubscriptionFactory(name="failing-one"),
        "disabled": SubscriptionFactory(name="disabled-one", state="disabled"),
        "healthy": SubscriptionFactory(name="healthy-one"),
    }
    Subscription.objects.filter(pk=made["failing"].pk).update(consecutive_failures=4)
    response = admin_client_logged_in.get(CHANGELIST, {"health": health})
    shown = {s.pk for s in response.context["cl"].result_list}
    assert shown == {made[expected].pk}


def test_send_test_event_reports_the_outcome(admin_client_logged_in, endpoint_url):
    subscription = SubscriptionFactory(url=endpoint_url)
    subscription_add_secret(subscription=subscription)
    messages = run_action(admin_client_logged_in, "send_test", [subscription])
    assert messages == [f"Test event to {subscription}: delivered (HTTP 204)."]
    test = Delivery.objects.get(subscription=subscription, is_test=True)
    assert test.status == "succeeded"


def test_resume_and_release_held_deliveries(admin_client_logged_in):
    subscription = SubscriptionFactory(state="paused")
    held = DeliveryFactory(subscription=subscription, status="held")
    messages = run_action(admin_client_logged_in, "resume_and_release", [subscription])
    assert messages == ["Resumed 1 subscription(s); released 1 held deliveries."]
    subscription.refresh_from_db()
    held.refresh_from_db()
    assert subscription.state == "active" and held.status == "pending"


def test_pause_then_rotate_secret_shows_the_new_secret_once(admin_client_logged_in):
    subscription = SubscriptionFactory()
    old = subscription_add_secret(subscription=subscription)
    run_action(admin_client_logged_in, "pause", [subscription])
    subscription.refresh_from_db()
    assert subscription.state == "paused"
    message = run_action(admin_client_logged_in, "rotate_secret", [subscription])[-1]
    (new,) = [word for word in message.split() if word.startswith("whsec_")]
    assert new != old and new in subscription.valid_secrets(timezone.now())
    page = admin_client_logged_in.get(
        reverse("admin:subscriptions_subscription_change", args=[subscription.pk])
    ).content.decode()
    assert new in page  # the message, shown on the next page
    again = admin_client_logged_in.get(
        reverse("admin:subscriptions_subscription_change", args=[subscription.pk])
    ).content.decode()
    assert new not in again and new[:10] in again


def test_the_24h_success_rate_counts_its_recent_ended_deliveries(admin_client_logged_in):
    subscription = SubscriptionFactory(name="rated")
    now = timezone.now()
    for status in ["succeeded", "succeeded", "succeeded", "dead", "retrying"]:
        DeliveryFactory(
            subscription=subscription,
            status=status,
            delivered_at=now if status == "succeeded" else None,
        )
    old = DeliveryFactory(subscription=subscription, status="dead")
    Delivery.objects.filter(pk=old.pk).update(created_at=now - timedelta(days=2))
    DeliveryFactory(subscription=subscription, status="dead", is_test=True)
    response = admin_client_logged_in.get(CHANGELIST)
    (shown,) = response.context["cl"].result_list
    assert (shown.recent_succeeded, shown.recent_dead) == (3, 1)
    assert "75.0% of 4" in response.content.decode()


def test_disable_then_enable_records_the_state_and_the_reason(admin_client_logged_in):
    subscription = SubscriptionFactory()
    assert run_action(admin_client_logged_in, "disable", [subscription]) == [
        "Disabled 1 subscription(s)."
    ]
    subscription.refresh_from_db()
    assert (subscription.state, subscription.state_reason) == ("disabled", "disabled by root")
    page = admin_client_logged_in.get(CHANGELIST).content.decode()
    assert "Disabled: disabled by root" in page
    assert run_action(admin_client_logged_in, "enable", [subscription]) == [
        "Enabled 1 subscription(s)."
    ]
    subscription.refresh_from_db()
    assert (subscription.state, subscription.state_reason) == ("active", "")
    actions = list(
        AuditLog.objects.filter(object_id=str(subscription.pk)).values_list("action", flat=True)
    )
    assert sorted(actions) == ["subscription.active", "subscription.disabled"]


def test_resume_offers_to_release_what_was_held(admin_client_logged_in):
    subscription = SubscriptionFactory(state="paused")
    held = DeliveryFactory(subscription=subscription, status="held")
    messages = run_action(admin_client_logged_in, "resume", [subscription])
    assert messages[0] == "Resumed 1 subscription(s)."
    assert messages[1].startswith("1 deliveries held while they were paused still wait")
    held.refresh_from_db()
    assert held.status == "held"
