"""Reads of deliveries that are more than one filter: what is stuck, and counts that stay
cheap on a table of millions of rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db.models import Count, IntegerField, OuterRef, Q, QuerySet, Subquery
from django.db.models.functions import Coalesce
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


# How deliveries end: the outcomes analytics, the dashboard and the admin's columns count.
SUCCEEDED = Q(status=DeliveryStatus.SUCCEEDED)
DEAD = Q(status=DeliveryStatus.DEAD)


def outcome_counts(rows: QuerySet[Delivery]) -> dict[str, int]:
    """Deliveries among ``rows``, how many succeeded and how many are dead (one query)."""
    return rows.aggregate(
        total=Count("id"),
        succeeded=Count("id", filter=SUCCEEDED),
        dead=Count("id", filter=DEAD),
    )


def success_rate(succeeded: int, dead: int) -> float | None:
    """The share of ended deliveries that succeeded; None before one ended."""
    ended = succeeded + dead
    return succeeded / ended if ended else None


def subscription_outcomes_since(since: datetime) -> dict[str, Any]:
    """Annotations of a subscription queryset: its deliveries made since ``since`` that
    succeeded (``recent_succeeded``) and are dead (``recent_dead``), each one indexed read of
    ``delivery_sub_time`` per subscription."""
    recent = Delivery.objects.filter(
        subscription=OuterRef("pk"), is_test=False, created_at__gte=since
    ).order_by()

    def count(condition: Q) -> Coalesce:
        rows = recent.filter(condition).values("subscription").annotate(n=Count("id"))
        return Coalesce(Subquery(rows.values("n"), output_field=IntegerField()), 0)

    return {"recent_succeeded": count(SUCCEEDED), "recent_dead": count(DEAD)}
