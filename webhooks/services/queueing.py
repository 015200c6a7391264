"""Queueing deliveries: ``deliver`` tasks after commit, and the sweeper that queues again what
is due (retries, lost tasks, claims of dead workers)."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError
from redis.exceptions import RedisError

from core.redis import get_broker_redis
from subscriptions.models import Subscription
from webhooks.models import UNFINISHED_STATUSES, Delivery

Status = Delivery.Status


UNFINISHED = tuple(UNFINISHED_STATUSES)


RETRYABLE = {Status.DEAD, Status.RETRYING, Status.HELD, Status.CANCELLED}


TABLE = Delivery._meta.db_table


SUBSCRIPTIONS = Subscription._meta.db_table


# seconds before the sweeper queues again what could not be queued (the broker did not answer)
# or was given back (a dependency failed before the batch was sent): seconds, not a lease
RELEASE_SECONDS = 2.0


# A key the sweeper keeps in the broker's Redis. When it is gone, so is everything queued with
# it (Redis restarted without persistence, or was flushed): every pending delivery is queued
# again at once, rather than when its lease lapses.
QUEUE_MARK = "eventhub:webhooks:queue-mark"


logger = logging.getLogger(__name__)


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
        transaction.on_commit(lambda: _enqueue_or_postpone(rows))


def _enqueue_or_postpone(rows: list[tuple[int, int]]) -> None:
    """Queue the tasks of rows just committed. When the broker does not take them, what was
    committed stands (the caller goes on), and the rows are due to the sweeper in
    ``RELEASE_SECONDS``: they flow within seconds of the broker's return."""
    try:
        deliveries_enqueue(rows)
    except OperationalError:
        logger.warning("the broker did not take %d deliveries; the sweeper queues them", len(rows))
        due = timezone.now() + timedelta(seconds=RELEASE_SECONDS)
        try:
            Delivery.objects.filter(
                id__in=[delivery_id for delivery_id, _ in rows],
                status=Status.PENDING,
                next_attempt_at__gt=due,
            ).update(next_attempt_at=due)
        except Exception:  # noqa: BLE001 - PostgreSQL is gone too: the lease lapses instead
            logger.warning("could not bring %d deliveries forward", len(rows), exc_info=True)


def queue_marked() -> bool:
    """Set the queue mark; True when it was missing, that is when the broker lost what was
    queued (or has never been marked). False too when the broker is not a Redis we can reach:
    then a lost task waits for its lease."""
    client = get_broker_redis()
    if client is None:
        return False
    try:
        return bool(client.set(QUEUE_MARK, timezone.now().isoformat(), nx=True))
    except RedisError:
        return False


@transaction.atomic
def deliveries_sweep(*, limit: int = 5000) -> int:
    """Queue again what is due: retries whose time has come, pending rows whose task was
    lost (all of them when the broker lost its queue), and claims whose worker died. Returns
    how many were queued."""
    now = timezone.now()
    with connection.cursor() as cursor:
        if queue_marked():
            # the broker lost its queue: every pending delivery's task is gone with it
            cursor.execute(
                f"UPDATE {TABLE} SET next_attempt_at = %s"
                " WHERE status = %s AND next_attempt_at > %s",
                [now, Status.PENDING, now],
            )
            logger.warning("the broker lost its queue: %d deliveries queued again", cursor.rowcount)
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
