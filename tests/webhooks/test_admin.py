"""The delivery admin's operator actions: retry and replay of selected deliveries."""

from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from tests.webhooks.factories import DeliveryFactory
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
