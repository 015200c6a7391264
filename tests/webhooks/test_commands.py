"""``manage.py list_dlq`` and ``manage.py replay_dlq`` against the real PostgreSQL (and a real
HTTP receiver for the replay that sends)."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import AuditLog
from subscriptions.services import subscription_add_secret
from tests.subscriptions.factories import SubscriptionFactory
from tests.webhooks.factories import DeliveryFactory
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db


def run(*args) -> list[str]:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip().splitlines()


def dead(subscription=None, *, age: timedelta | None = None, **fields) -> Delivery:
    delivery = DeliveryFactory(
        subscription=subscription or SubscriptionFactory(),
        status="dead",
        attempts=8,
        last_error="HTTP 503: upstream\nunavailable",
        **fields,
    )
    if age is not None:
        Delivery.objects.filter(pk=delivery.pk).update(updated_at=timezone.now() - age)
    return delivery


def listed(lines: list[str]) -> list[int]:
    """The delivery ids of list_dlq's rows (between the header and the count)."""
    return [int(line.split()[0]) for line in lines[1:-1]]


# --- list_dlq ----------------------------------------------------------------------------------


def test_list_dlq_prints_each_dead_delivery_then_the_count():
    subscription = SubscriptionFactory(name="billing hook")
    older = dead(subscription, event_id="evt-1", age=timedelta(minutes=5))
    newer = dead(subscription, event_id="evt-2", event_type="order.created")
    DeliveryFactory(status="succeeded", delivered_at=timezone.now())
    dead(subscription, is_test=True)  # a failed test event is not in the DLQ

    lines = run("list_dlq")

    assert lines[0].split()[:2] == ["ID", "DEAD"]
    assert listed(lines) == [newer.pk, older.pk]
    row = lines[1]
    for text in (
        f"{subscription.pk} billing hook",
        "order.created",
        "evt-2",
        " 8 ",
        "HTTP 503: upstream unavailable",
    ):
        assert text in row
    assert lines[-1] == "2 dead deliveries"


def test_list_dlq_filters_by_since_subscription_and_event_type():
    one, other = SubscriptionFactory(), SubscriptionFactory()
    wanted = dead(one, event_type="order.created")
    dead(one, event_type="order.created", age=timedelta(hours=3))
    dead(one, event_type="payment.failed")
    dead(other, event_type="order.created")

    lines = run(
        "list_dlq", "--since", "2h", "--subscription", str(one.pk), "--event-type", "order.created"
    )

    assert listed(lines) == [wanted.pk]
    assert lines[-1] == "1 dead delivery"


def test_list_dlq_limit_prints_fewer_rows_but_counts_them_all():
    for _ in range(4):
        dead()
    lines = run("list_dlq", "--limit", "2")
    assert len(listed(lines)) == 2
    assert lines[-1] == "4 dead deliveries (2 shown)"


def test_list_dlq_says_when_the_queue_is_empty():
    assert run("list_dlq") == ["0 dead deliveries"]


@pytest.mark.parametrize("args", [["--since", "soon"], ["--since", "0m"], ["--limit", "0"]])
def test_list_dlq_rejects_bad_options(args):
    with pytest.raises(CommandError):
        run("list_dlq", *args)


# --- replay_dlq --------------------------------------------------------------------------------


def test_replay_dlq_dry_run_prints_the_count_and_changes_nothing():
    dead(), dead(), dead(age=timedelta(days=2))
    lines = run("replay_dlq", "--since", "1d", "--dry-run")
    assert lines == ["2 deliveries match (status dead, since 1d).", "Dry run: nothing replayed."]
    assert set(Delivery.objects.values_list("status", flat=True)) == {"dead"}
    assert not AuditLog.objects.exists()


def test_replay_dlq_prints_the_count_first_then_replays_and_audits_with_its_label():
    subscription = SubscriptionFactory()
    wanted = dead(subscription, event_type="order.created")
    dead(subscription, event_type="payment.failed")
    dead(event_type="order.created")

    lines = run(
        "replay_dlq",
        "--since",
        "2h",
        "--subscription",
        str(subscription.pk),
        "--event-type",
        "order.created",
    )

    assert lines == ["1 delivery matches (status dead, since 2h).", "Replayed 1 delivery."]
    assert list(Delivery.objects.filter(status="pending").values_list("id", flat=True)) == [
        wanted.pk
    ]
    audit = AuditLog.objects.get(action="delivery.replay")
    assert audit.actor is None and audit.actor_label == "manage.py replay_dlq"
    assert audit.changes["subscription"] == subscription.pk
    assert audit.changes["event_type"] == "order.created"


def test_replay_dlq_replays_another_status_when_asked():
    held = DeliveryFactory(status="held")
    dead()
    lines = run("replay_dlq", "--since", "1h", "--status", "held")
    assert lines[-1] == "Replayed 1 delivery."
    assert Delivery.objects.get(pk=held.pk).status == "pending"
    assert Delivery.objects.filter(status="dead").count() == 1


def test_replay_dlq_sends_the_deliveries_again(
    receiver, store_event, eager_tasks, django_capture_on_commit_callbacks
):
    subscription = SubscriptionFactory(url=receiver.url())
    subscription_add_secret(subscription=subscription)
    event_id = store_event(data={"amount": 1})
    delivery = dead(subscription, event_id=event_id)

    with django_capture_on_commit_callbacks(execute=True):
        run("replay_dlq", "--since", "10m")

    (request,) = receiver.wait_for(1)
    assert request.headers["webhook-id"] == f"msg_{delivery.pk}"
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "--since"),
        (["--since", "two hours"], "--since"),
        (["--since", "2h", "--status", "succeeded"], "--status"),
        (["--since", "2h", "--subscription", "999999999"], "--subscription"),
    ],
)
def test_replay_dlq_rejects_bad_options(args, message):
    dead()
    with pytest.raises(CommandError, match=message):
        run("replay_dlq", *args)
    assert Delivery.objects.get().status == "dead"
