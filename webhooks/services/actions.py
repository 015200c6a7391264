"""Operator actions on deliveries, one service each for admin, REST, GraphQL and the commands:
retry, replay, release what a paused subscription held, resume, send a test event."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from accounts.services import audit_log_record
from core.identity import TEST_SOURCE
from core.problems import ProblemError
from subscriptions.models import Subscription
from subscriptions.services import subscription_set_state
from webhooks import backoff
from webhooks.models import Delivery, ErrorClass
from webhooks.payloads import build_request
from webhooks.sender import OutboundRequest, Outcome, get_sender
from webhooks.services.outcomes import (
    RowUpdate,
    attempt_row,
    update_rows,
)
from webhooks.services.queueing import (
    RETRYABLE,
    requeue,
)

Status = Delivery.Status


class DeliveryNotRetryable(ProblemError):
    status_code = 409
    default_code = "delivery-not-retryable"
    title = "Delivery cannot be retried"


@transaction.atomic
def delivery_retry(*, delivery: Delivery, actor: AbstractBaseUser | None = None) -> Delivery:
    """Queue a finished or waiting delivery for another attempt now, with the same webhook-id.

    The claim is a conditional update, so two operators retrying at once queue it once.
    """
    now = timezone.now()
    claimed = Delivery.objects.select_for_update().filter(pk=delivery.pk, status__in=RETRYABLE)
    previous = claimed.values_list("status", flat=True).first()
    if previous is None or not requeue(claimed, now=now):
        delivery.refresh_from_db()
        raise DeliveryNotRetryable(
            f"Delivery {delivery.pk} is {delivery.status}; only dead, retrying, held or "
            "cancelled deliveries can be retried."
        )
    delivery.refresh_from_db()
    audit_log_record(
        actor=actor,
        action="delivery.retry",
        obj=delivery,
        changes={"status": [previous, delivery.status]},
    )
    return delivery


def deliveries_for_replay(
    *,
    since: timedelta,
    status: str = Status.DEAD,
    subscription_id: int | None = None,
    event_type: str | None = None,
):
    """Deliveries in ``status`` that got there within ``since`` (the DLQ's recent past)."""
    queryset = Delivery.objects.filter(
        status=status, updated_at__gte=timezone.now() - since, is_test=False
    )
    if subscription_id is not None:
        queryset = queryset.filter(subscription_id=subscription_id)
    if event_type:
        queryset = queryset.filter(event_type=event_type)
    return queryset


@transaction.atomic
def deliveries_replay(
    *,
    since: timedelta,
    status: str = Status.DEAD,
    subscription_id: int | None = None,
    event_type: str | None = None,
    dry_run: bool = False,
    actor: AbstractBaseUser | None = None,
    actor_label: str = "",
) -> int:
    """Queue again the deliveries the filters select (each keeps its webhook-id); with
    ``dry_run`` only count them. Every replay is written to the audit log."""
    if status not in RETRYABLE:
        raise DeliveryNotRetryable(
            f"Deliveries that are {status} cannot be replayed; choose dead, retrying, held or "
            "cancelled."
        )
    queryset = deliveries_for_replay(
        since=since, status=status, subscription_id=subscription_id, event_type=event_type
    )
    if dry_run:
        return queryset.count()
    count = len(requeue(queryset.select_for_update(skip_locked=True), now=timezone.now()))
    audit_log_record(
        actor=actor,
        actor_label=actor_label,
        action="delivery.replay",
        changes={
            "since_seconds": int(since.total_seconds()),
            "status": status,
            "subscription": subscription_id,
            "event_type": event_type,
            "count": count,
        },
    )
    return count


@transaction.atomic
def subscription_release_held(
    *, subscription: Subscription, actor: AbstractBaseUser | None = None
) -> int:
    """Queue the deliveries held while the subscription was paused or disabled."""
    count = len(
        requeue(
            subscription.deliveries.filter(status=Status.HELD).select_for_update(skip_locked=True),
            now=timezone.now(),
        )
    )
    audit_log_record(
        actor=actor, action="subscription.release_held", obj=subscription, changes={"count": count}
    )
    return count


@dataclass(frozen=True)
class ResumeResult:
    resumed: bool  # it was not active before
    released: int  # held deliveries queued again
    held: int  # deliveries still held


def subscription_resume(
    *, subscription: Subscription, release_held: bool, actor: AbstractBaseUser | None = None
) -> ResumeResult:
    """Make the subscription active again (audited) and, with ``release_held``, queue the
    deliveries held while it was paused or disabled; the one resume of admin, REST and
    GraphQL."""
    resumed = not subscription.is_active
    released = 0
    with transaction.atomic():
        if resumed:
            subscription_set_state(
                subscription=subscription, state=Subscription.State.ACTIVE, actor=actor
            )
        if release_held:
            released = subscription_release_held(subscription=subscription, actor=actor)
    held = subscription.deliveries.filter(status=Status.HELD).count()
    return ResumeResult(resumed=resumed, released=released, held=held)


def subscription_send_test(
    *, subscription: Subscription, actor: AbstractBaseUser | None = None
) -> Delivery:
    """Send a test event to the endpoint now, whatever the subscription's state: one attempt,
    never retried, never counted in its health, marked ``is_test``."""
    now = timezone.now()
    event_id = f"test_{uuid.uuid4().hex}"
    envelope = {
        "specversion": "1.0",
        "id": event_id,
        "source": TEST_SOURCE,
        "type": "eventhub.test",
        "time": now.isoformat().replace("+00:00", "Z"),
        "datacontenttype": "application/json",
        "data": {"message": "A test event from EventHub.", "subscription": subscription.pk},
    }
    delivery = Delivery.objects.create(
        event_id=event_id,
        event_source=TEST_SOURCE,
        event_type="eventhub.test",
        subscription=subscription,
        status=Status.IN_FLIGHT,
        attempts=1,
        is_test=True,
    )
    body, headers = build_request(
        subscription,
        envelope,
        message_id=delivery.message_id,
        timestamp=int(time.time()),
        secrets=subscription.valid_secrets(now),
    )
    # the operator waits for the answer in a web request: the wait stays under the web
    # server's own timeout whatever the subscription's
    timeout = min(subscription.timeout_seconds, settings.WEBHOOK_TEST_TIMEOUT)
    try:
        outcome = get_sender().send_many(
            [OutboundRequest(subscription.url, body, headers, timeout)]
        )[0]
    except Exception as exc:  # noqa: BLE001 - the test delivery must not stay in flight
        outcome = Outcome(
            None, "", 0, ErrorClass.CONNECTION, f"the request could not be made: {exc}"
        )
    attempt_row(delivery.pk, 1, subscription, headers, outcome).save()
    finished = timezone.now()
    if outcome.succeeded:
        row = RowUpdate(delivery.pk, Status.SUCCEEDED, None, outcome.status, "", finished)
    else:
        row = RowUpdate(delivery.pk, Status.DEAD, None, outcome.status, backoff.describe(outcome))
    update_rows([row], now=finished)
    delivery.refresh_from_db()
    audit_log_record(
        actor=actor,
        action="subscription.test",
        obj=subscription,
        changes={"delivery": delivery.pk, "status": delivery.status},
    )
    return delivery
