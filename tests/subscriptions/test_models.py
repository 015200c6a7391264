from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction
from django.test import override_settings
from django.utils import timezone

from accounts.models import AuditLog
from subscriptions.models import Subscription
from subscriptions.patterns import pattern_matches
from subscriptions.services import (
    subscription_add_secret,
    subscription_rotate_secret,
    subscription_set_state,
)
from tests.subscriptions.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("pattern", "event_type", "expected"),
    [
        ("payment.failed", "payment.failed", True),
        ("payment.failed", "payment.failed_twice", False),
        ("order.*", "order.created", True),
        ("order.*", "order.item.added", True),
        ("order.*", "order", False),
        ("order.*", "orders.created", False),
        ("*", "anything.at.all", True),
    ],
)
def test_pattern_matching(pattern, event_type, expected):
    assert pattern_matches(pattern, event_type) is expected


def test_wants_checks_every_pattern():
    subscription = SubscriptionFactory.build(event_types=["user.logged_in", "order.*"])
    assert subscription.wants("order.paid")
    assert subscription.wants("user.logged_in")
    assert not subscription.wants("payment.failed")


def test_clean_rejects_bad_patterns_filters_and_headers():
    subscription = SubscriptionFactory.build(
        event_types=["order.*", "Order!"],
        filter={"amount": {"$greater": 5}},
        headers={"X-Team": 7},
    )
    with pytest.raises(ValidationError) as caught:
        subscription.full_clean()
    errors = caught.value.message_dict
    assert "'Order!'" in errors["event_types"][0]
    assert errors["filter"] == ["amount/$greater: unknown operator $greater"]
    assert "headers" in errors


@override_settings(WEBHOOK_ALLOWED_NETWORKS=[])
def test_clean_refuses_a_loopback_url_unless_allowed():
    subscription = SubscriptionFactory.build(url="http://127.0.0.1:8080/hook")
    with pytest.raises(ValidationError) as caught:
        subscription.full_clean()
    assert "WEBHOOK_ALLOWED_NETWORKS" in caught.value.message_dict["url"][0]


def test_clean_accepts_a_loopback_url_when_its_network_is_allowed():
    subscription = SubscriptionFactory()
    subscription.url = "http://127.0.0.1:8080/hook"
    subscription.full_clean()  # raises if refused
    subscription.save()
    assert Subscription.objects.get(pk=subscription.pk).url == "http://127.0.0.1:8080/hook"


def test_state_changes_record_reason_and_time():
    subscription = SubscriptionFactory()
    before = timezone.now()
    subscription.disable("410 Gone from the endpoint")
    subscription.refresh_from_db()
    assert subscription.state == Subscription.State.DISABLED
    assert subscription.state_reason == "410 Gone from the endpoint"
    assert subscription.state_changed_at >= before

    subscription.resume()
    subscription.refresh_from_db()
    assert subscription.is_active
    assert subscription.state_reason == ""


def test_set_state_writes_the_audit_log(django_user_model):
    operator = django_user_model.objects.create_user("operator")
    subscription = SubscriptionFactory()
    subscription_set_state(
        subscription=subscription,
        state=Subscription.State.PAUSED,
        reason="maintenance",
        actor=operator,
    )
    entry = AuditLog.objects.get()
    assert (entry.actor, entry.action, entry.object_id) == (
        operator,
        "subscription.paused",
        str(subscription.pk),
    )
    assert entry.changes == {"state": ["active", "paused"], "reason": "maintenance"}


@pytest.mark.parametrize(
    "fields",
    [{"timeout_seconds": 0}, {"rate_limit_per_second": 0}, {"event_types": []}, {"state": "gone"}],
)
def test_the_database_enforces_subscription_constraints(fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        SubscriptionFactory(**fields)


def test_defaults_come_from_settings():
    subscription = SubscriptionFactory()
    assert subscription.retry_schedule == [5, 300, 1800, 7200, 18000, 36000, 36000]
    assert subscription.timeout_seconds == 15
    assert subscription.output_format == Subscription.OutputFormat.STANDARD_WEBHOOKS


def test_rotation_keeps_old_secrets_valid_for_the_overlap_only():
    subscription = SubscriptionFactory()
    first = subscription_add_secret(subscription=subscription)
    second = subscription_rotate_secret(subscription=subscription, overlap=timedelta(hours=24))

    assert first != second
    assert first.startswith("whsec_") and second.startswith("whsec_")
    old, new = sorted(subscription.secrets.all(), key=lambda s: s.created_at)
    assert new.secret == second and new.expires_at is None
    assert old.secret == first
    assert old.is_valid() and not old.is_valid(timezone.now() + timedelta(hours=25))
    assert AuditLog.objects.filter(action="subscription.rotate_secret").count() == 1


def test_a_secret_is_shown_by_hint_only():
    subscription = SubscriptionFactory()
    subscription_add_secret(subscription=subscription)
    secret = subscription.secrets.get()
    assert secret.hint == secret.secret[:10] + "…"
    assert secret.secret not in str(secret)
