"""Writes for deliveries: operator actions such as retrying a delivery."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.utils import timezone

from accounts.services import audit_log_record
from eventhub.problems import ProblemError
from webhooks.models import Delivery

RETRYABLE = {
    Delivery.Status.DEAD,
    Delivery.Status.RETRYING,
    Delivery.Status.HELD,
    Delivery.Status.CANCELLED,
}


class DeliveryNotRetryable(ProblemError):
    status_code = 409
    default_code = "delivery-not-retryable"
    title = "Delivery cannot be retried"


@transaction.atomic
def delivery_retry(*, delivery: Delivery, actor: AbstractBaseUser | None = None) -> Delivery:
    """Queue a finished or waiting delivery for another attempt now.

    The claim is a conditional update, so two operators retrying at once queue it once.
    """
    updated = Delivery.objects.filter(pk=delivery.pk, status__in=RETRYABLE).update(
        status=Delivery.Status.PENDING, next_attempt_at=timezone.now(), updated_at=timezone.now()
    )
    if not updated:
        delivery.refresh_from_db()
        raise DeliveryNotRetryable(
            f"Delivery {delivery.pk} is {delivery.status}; only dead, retrying, held or "
            "cancelled deliveries can be retried."
        )
    previous = delivery.status
    delivery.refresh_from_db()
    audit_log_record(
        actor=actor,
        action="delivery.retry",
        obj=delivery,
        changes={"status": [previous, delivery.status]},
    )
    return delivery
