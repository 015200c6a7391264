"""The delivery admin: retry and replay of selected deliveries, search by event or webhook id,
filters, the dead-letter view with its dry-run count."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from accounts.models import AuditLog
from tests.webhooks.factories import DeliveryAttemptFactory, DeliveryFactory
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:webhooks_delivery_changelist")


def run_action(client, action: str, deliveries: list[Delivery]) -> list[str]:
    response = client.post(
        CHANGELIST, {"action": action, "_selected_action": [d.pk for d in deliveries]}
    )
    assert response.status_code == 302
    return [str(m) for m in get_messages(response.wsgi_request)]


def statuses(deliveries: list[Delivery]) -> list[str]:
    return [Delivery.objects.get(pk=d.pk).status for d in deliveries]


def test_retry_selected_queues_the_retryable_ones_and_counts_the_skipped(admin_client_logged_in):
    selected = [
        DeliveryFactory(status="dead"),
        DeliveryFactory(status="held"),
        DeliveryFactory(status="succeeded", delivered_at=timezone.now()),
    ]
    messages = run_action(admin_client_logged_in, "retry_selected", selected)
    assert statuses(selected) == ["pending", "pending", "succeeded"]
    assert messages[0] == "Queued 2 deliveries for retry."
    assert messages[1].startswith("Skipped 1 that cannot be retried")


def test_replay_selected_dead_deliveries_leaves_the_others(admin_client_logged_in):
    selected = [DeliveryFactory(status="dead"), DeliveryFactory(status="retrying")]
    messages = run_action(admin_client_logged_in, "replay_dead", selected)
    assert statuses(selected) == ["pending", "retrying"]
    assert messages == ["Replayed 1 dead deliveries.", "Skipped 1 that are not dead."]


def test_a_delivery_page_shows_the_actions(admin_client_logged_in):
    DeliveryFactory(status="dead")
    page = admin_client_logged_in.get(CHANGELIST).content.decode()
    assert "Retry selected deliveries" in page and "Replay selected dead deliveries" in page


def listed(client, params: dict) -> set[int]:
    response = client.get(CHANGELIST, params)
    assert response.status_code == 200
    return {d.pk for d in response.context["cl"].result_list}


def test_search_by_event_id_webhook_id_or_delivery_id(admin_client_logged_in):
    one, other = DeliveryFactory(), DeliveryFactory()
    assert listed(admin_client_logged_in, {"q": one.event_id}) == {one.pk}
    assert listed(admin_client_logged_in, {"q": other.message_id}) == {other.pk}
    assert listed(admin_client_logged_in, {"q": str(one.pk)}) == {one.pk}
    assert listed(admin_client_logged_in, {"q": one.event_id[:8]}) == set()  # exact only


def test_filter_by_the_last_attempts_error_class(admin_client_logged_in):
    timed_out = DeliveryFactory(status="retrying", attempts=2)
    DeliveryAttemptFactory(
        delivery=timed_out, number=1, response_status=500, error_class="http_5xx"
    )
    DeliveryAttemptFactory(
        delivery=timed_out, number=2, response_status=None, error_class="timeout"
    )
    recovered = DeliveryFactory(status="retrying", attempts=2)
    DeliveryAttemptFactory(
        delivery=recovered, number=1, response_status=None, error_class="timeout"
    )
    DeliveryAttemptFactory(
        delivery=recovered, number=2, response_status=500, error_class="http_5xx"
    )
    assert listed(admin_client_logged_in, {"error_class": "timeout"}) == {timed_out.pk}
    assert listed(admin_client_logged_in, {"error_class": "http_5xx"}) == {recovered.pk}


def test_filter_by_subscription_and_event_type(admin_client_logged_in, event_type):
    paid = DeliveryFactory(event_type="payment.failed")
    other = DeliveryFactory(event_type="order.created")
    assert listed(admin_client_logged_in, {"event_type": "payment.failed"}) == {paid.pk}
    assert listed(admin_client_logged_in, {"subscription__id__exact": other.subscription_id}) == {
        other.pk
    }


DEAD_LETTERS = reverse("admin:webhooks_delivery_dead_letters")


def test_the_dead_letter_view_counts_first_then_replays_what_it_counted(admin_client_logged_in):
    wanted = [DeliveryFactory(status="dead", event_type="order.created") for _ in range(3)]
    other_type = DeliveryFactory(status="dead", event_type="payment.failed")
    long_dead = DeliveryFactory(status="dead", event_type="order.created")
    Delivery.objects.filter(pk=long_dead.pk).update(updated_at=timezone.now() - timedelta(days=3))
    query = {"since": "1d", "event_type": "order.created", "count": "1"}
    page = admin_client_logged_in.get(DEAD_LETTERS, query).content.decode()
    assert "<strong>3</strong> dead deliveries match." in page
    assert statuses(wanted) == ["dead"] * 3  # the count changed nothing
    response = admin_client_logged_in.post(DEAD_LETTERS, {**query, "replay": "1"})
    assert response.status_code == 302
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Replayed 3 dead deliveries."]
    assert statuses(wanted) == ["pending"] * 3
    assert statuses([other_type, long_dead]) == ["dead", "dead"]
    entry = AuditLog.objects.get(action="delivery.replay")
    assert entry.actor_label == "root" and entry.changes["count"] == 3


def test_the_dead_letter_view_needs_the_change_permission(client, django_user_model):
    viewer = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    viewer.user_permissions.add(Permission.objects.get(codename="view_delivery"))
    client.force_login(viewer)
    assert client.get(DEAD_LETTERS).status_code == 403
