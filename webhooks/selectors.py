"""Reads of deliveries that are more than one filter: what is stuck, and counts that stay
cheap on a table of millions of rows."""

from __future__ import annotations

from datetime import datetime

from django.db.models import QuerySet
from django.utils import timezone

from webhooks.models import Delivery, DeliveryStatus

# Waiting for a worker: pending (queued; next_attempt_at is when the sweeper queues it again)
# or retrying (next_attempt_at is when it is due).
WAITING = [DeliveryStatus.PENDING, DeliveryStatus.RETRYING]


def capped_count(queryset: QuerySet, cap: int) -> tuple[int, bool]:
    """The rows of ``queryset``, counted up to ``cap``; and whether there are more. A count
    that stops at the cap reads at most ``cap + 1`` index entries however big the table."""
    count = queryset.order_by()[: cap + 1].count()
    return min(count, cap), count > cap


def oldest_due_delivery(now: datetime | None = None) -> Delivery | None:
    """The delivery waiting longest past its due time (pending or retrying with
    ``next_attempt_at`` passed): what a stuck sweeper or a missing worker leaves behind.
    One indexed read per status (``delivery_status_next``)."""
    now = now or timezone.now()
    candidates = [
        Delivery.objects.filter(status=status, next_attempt_at__lte=now)
        .select_related("subscription")
        .order_by("next_attempt_at")
        .first()
        for status in WAITING
    ]
    found = [delivery for delivery in candidates if delivery is not None]
    return min(found, key=lambda delivery: delivery.next_attempt_at) if found else None
