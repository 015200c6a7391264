"""Queueing deliveries: ``deliver`` tasks after commit, and the sweeper that queues again what
is due (retries, lost tasks, claims of dead workers)."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from subscriptions.models import Subscription
from webhooks.models import UNFINISHED_STATUSES, Delivery

Status = Delivery.Status


UNFINISHED = tuple(UNFINISHED_STATUSES)


RETRYABLE = {Status.DEAD, Status.RETRYING, Status.HELD, Status.CANCELLED}


TABLE = Delivery._meta.db_table


SUBSCRIPTIONS = Subscription._meta.db_table


def lease() -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)


def deliveries_enqueue(rows: Iterable[tuple[int, int]]) -> int:
    """Queue ``deliver`` tasks for (delivery id, subscription id) rows: one subscription per
    task, so a slow endpoint's batch never holds up another's. Returns the tasks queued."""
    from webhooks.tasks import deliver

    by_subscription: dict[int, list[int]] = defaultdict(list)
    for delivery_id, subscription_id in rows:
        by_subscription[subscription_id].append(delivery_id)
    size = settings.WEBHOOK_TASK_BATCH
    tasks = 0
    for ids in by_subscription.values():
        ids.sort()
        for start in range(0, len(ids), size):
            deliver.delay(ids[start : start + size])
            tasks += 1
    return tasks


def deliveries_enqueue_on_commit(rows: list[tuple[int, int]]) -> None:
    if rows:
        transaction.on_commit(lambda: deliveries_enqueue(rows))


@transaction.atomic
def deliveries_sweep(*, limit: int = 5000) -> int:
    """Queue again what is due: retries whose time has come, pending rows whose task was
    lost, and claims whose worker died. Returns how many were queued."""
    now = timezone.now()
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {TABLE} d SET status = %s, next_attempt_at = %s,
                -- a retry or a lapsed claim becomes pending now; a pending row queued again
                -- keeps its time, so that the age of what waits (webhooks.backlog) shows
                -- a task that keeps getting lost
                updated_at = CASE WHEN d.status = %s THEN d.updated_at ELSE %s END
            WHERE d.id IN (
                SELECT id FROM {TABLE}
                WHERE status IN (%s, %s, %s) AND next_attempt_at <= %s
                ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED
            )
            RETURNING d.id, d.subscription_id
            """,
            [
                Status.PENDING,
                now + lease(),
                Status.PENDING,
                now,
                Status.PENDING,
                Status.RETRYING,
                Status.IN_FLIGHT,
                now,
                limit,
            ],
        )
        rows = cursor.fetchall()
    deliveries_enqueue_on_commit(rows)
    return len(rows)


def requeue(queryset, *, now: datetime) -> list[tuple[int, int]]:
    """Make the deliveries of ``queryset`` pending again with a fresh retry schedule."""
    rows = list(queryset.values_list("id", "subscription_id"))
    if rows:
        Delivery.objects.filter(id__in=[r[0] for r in rows]).update(
            status=Status.PENDING,
            next_attempt_at=now + lease(),
            attempts_before_replay=F("attempts"),
            updated_at=now,
        )
        deliveries_enqueue_on_commit(rows)
    return rows
