"""What came of each attempt, written as it arrives: the attempt rows, the delivery's new state,
what to queue next."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections import defaultdict
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.db import (
    InterfaceError,
    OperationalError,
    close_old_connections,
    connection,
    transaction,
)
from django.utils import timezone
from prometheus_client import Counter, Histogram

from core.identity import EventKey
from subscriptions.models import Subscription
from webhooks import backoff
from webhooks.models import Delivery, DeliveryAttempt
from webhooks.payloads import recorded_headers
from webhooks.sender import OutboundRequest, Outcome
from webhooks.services.claims import Claimed
from webhooks.services.dead_letters import publish_dead
from webhooks.services.health import record_health, subscription_disable
from webhooks.services.queueing import (
    TABLE,
    deliveries_enqueue_on_commit,
)

logger = logging.getLogger(__name__)
Status = Delivery.Status


# outcome: what the attempt made of the delivery (succeeded, retrying, dead)
DELIVERIES = Counter(
    "deliveries_total",
    "What each attempt made of its delivery, and deliveries that died without one",
    ["outcome"],
)
# error_class: an ErrorClass value, or "none" for an answer in 2xx
DELIVERY_ATTEMPTS = Counter(
    "delivery_attempts_total", "Webhook requests made, by error class", ["error_class"]
)
DELIVERY_DURATION = Histogram(
    "delivery_duration_seconds",
    "Duration of webhook requests",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
NO_ERROR = "none"
# how long a recorder keeps trying to write outcomes while PostgreSQL does not answer
RECORD_RETRY_SECONDS = 30.0


class RowUpdate(NamedTuple):
    """The new state of an in-flight delivery, as ``update_rows`` writes it."""

    id: int
    status: str
    next_attempt_at: datetime | None = None
    status_code: int | None = None
    error: str | None = None  # None keeps the last error
    delivered_at: datetime | None = None
    attempts_delta: int = 0  # -1: the claim did not count as an attempt (rate limited)


def update_rows(rows: list[RowUpdate], *, now: datetime) -> None:
    """Write outcomes of in-flight deliveries. Only rows still in flight change, so a worker
    whose claim lapsed cannot overwrite a newer one."""
    if not rows:
        return
    row = "(%s, %s, %s::timestamptz, %s::int, %s, %s::timestamptz, %s::int)"
    values = ", ".join([row] * len(rows))
    params = [value for item in rows for value in item]
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {TABLE} d SET status = v.status, next_attempt_at = v.next_at,
                last_status_code = COALESCE(v.code, d.last_status_code),
                last_error = COALESCE(v.error, d.last_error),
                delivered_at = COALESCE(v.delivered, d.delivered_at),
                attempts = d.attempts + LEAST(v.delta, 0), updated_at = %s
            FROM (VALUES {values}) AS v(id, status, next_at, code, error, delivered, delta)
            WHERE d.id = v.id AND d.status = %s
            """,
            [now, *params, Status.IN_FLIGHT],
        )


_recording_lock = threading.Lock()


_recording: tuple[int, ThreadPoolExecutor, threading.BoundedSemaphore] | None = None


def _recording_state() -> tuple[ThreadPoolExecutor, threading.BoundedSemaphore]:
    global _recording
    with _recording_lock:
        if _recording is None or _recording[0] != os.getpid():
            _recording = (
                os.getpid(),
                ThreadPoolExecutor(
                    settings.WEBHOOK_RECORDER_THREADS, thread_name_prefix="webhook-recorder"
                ),
                threading.BoundedSemaphore(settings.WEBHOOK_MAX_BATCHES_IN_FLIGHT),
            )
        return _recording[1], _recording[2]


def recorder() -> ThreadPoolExecutor:
    return _recording_state()[0]


def outstanding_batches() -> threading.BoundedSemaphore:
    return _recording_state()[1]


def record_when_done(
    done: Future,
    sendable: list[tuple[Claimed, OutboundRequest]],
    subscriptions: dict[int, Subscription],
    events: dict[EventKey, dict[str, Any]],
    missing: list[Claimed],
) -> None:
    """Write the outcomes of a batch sent in the background (in a recorder thread). While
    PostgreSQL does not answer (a restart, a failover) the write is tried again for up to
    ``RECORD_RETRY_SECONDS``: the requests were made, and a claim left to lapse would send
    them all a second time."""
    close_old_connections()
    try:
        outcomes = done.result()
        deadline = time.monotonic() + RECORD_RETRY_SECONDS
        pause = 0.5
        while True:
            try:
                record_outcomes(sendable, outcomes, subscriptions, events, missing)
                break
            except (OperationalError, InterfaceError):
                if time.monotonic() > deadline:
                    raise
                logger.warning("PostgreSQL did not take the outcomes; trying again", exc_info=True)
                connection.close()  # a broken connection is not used again
                time.sleep(pause)
                pause = min(pause * 2, 5.0)
    except Exception:
        # the claims stay in flight; the sweeper takes them back when their lease lapses
        logger.exception("could not record the outcomes of %d deliveries", len(sendable))
    finally:
        outstanding_batches().release()
        close_old_connections()


def attempt_row(
    delivery_id: int,
    number: int,
    subscription: Subscription,
    headers: dict[str, str],
    outcome: Outcome,
) -> DeliveryAttempt:
    """The record of one request (the subscription's own header values masked)."""
    return DeliveryAttempt(
        delivery_id=delivery_id,
        number=number,
        request_headers=recorded_headers(subscription, headers),
        response_status=outcome.status,
        response_body=outcome.body,
        duration_ms=outcome.duration_ms,
        error_class=backoff.error_class_of(outcome),
        remote_address=outcome.remote_address,
    )


def record_outcomes(
    sendable: list[tuple[Claimed, OutboundRequest]],
    outcomes: list[Outcome],
    subscriptions: dict[int, Subscription],
    events: dict[EventKey, dict[str, Any]],
    missing: list[Claimed],
) -> None:
    now = timezone.now()
    attempts: list[DeliveryAttempt] = []
    rows: list[tuple] = []
    dead: list[tuple[Claimed, str, int | None]] = []
    finished_ordered: list[Claimed] = []
    health: dict[int, list[Outcome]] = defaultdict(list)
    gone: set[int] = set()
    # counted once written: a write tried again (PostgreSQL restarting) counts nothing twice
    observed: list[Outcome] = []
    made: list[str] = []
    for (item, request), outcome in zip(sendable, outcomes, strict=True):
        if outcome.unsent:
            # no request was made: pending again, due now, and no attempt counted
            rows.append(RowUpdate(item.id, Status.PENDING, now, attempts_delta=-1))
            continue
        subscription = subscriptions[item.subscription_id]
        attempts.append(attempt_row(item.id, item.attempt, subscription, request.headers, outcome))
        observed.append(outcome)
        health[item.subscription_id].append(outcome)
        if outcome.succeeded:
            rows.append(RowUpdate(item.id, Status.SUCCEEDED, None, outcome.status, "", now))
            made.append(Status.SUCCEEDED.value)
            if subscription.ordered:
                finished_ordered.append(item)
            continue
        error = backoff.describe(outcome)
        if outcome.status == 410:
            gone.add(item.subscription_id)
        delay = None
        if backoff.is_retryable(outcome):
            delay = backoff.retry_delay(
                subscription.retry_schedule, item.retry_index, outcome.retry_after
            )
        if delay is not None:
            due = now + timedelta(seconds=delay)
            rows.append(RowUpdate(item.id, Status.RETRYING, due, outcome.status, error))
            made.append(Status.RETRYING.value)
        else:
            rows.append(RowUpdate(item.id, Status.DEAD, None, outcome.status, error))
            dead.append((item, error, outcome.status))
            made.append(Status.DEAD.value)
            if subscription.ordered:
                finished_ordered.append(item)
    for item in missing:
        error = "the event is no longer stored (its retention ended)"
        rows.append(RowUpdate(item.id, Status.DEAD, error=error))
        made.append(Status.DEAD.value)
        dead.append((item, error, None))

    with transaction.atomic():
        DeliveryAttempt.objects.bulk_create(attempts, ignore_conflicts=True)
        update_rows(rows, now=now)
        for subscription_id, results in health.items():
            record_health(subscriptions[subscription_id], results, now)
        for subscription_id in gone:
            subscription_disable(
                subscription=subscriptions[subscription_id],
                reason="The endpoint answered 410 Gone.",
            )
        _enqueue_successors(finished_ordered)
    for outcome in observed:
        DELIVERY_DURATION.observe(outcome.duration_ms / 1000)
        DELIVERY_ATTEMPTS.labels(backoff.error_class_of(outcome) or NO_ERROR).inc()
    for label in made:
        DELIVERIES.labels(label).inc()
    if dead:
        publish_dead(dead, subscriptions, events)


def _enqueue_successors(finished: list[Claimed]) -> None:
    """For ordered subscriptions: queue the next delivery of each key that just finished."""
    rows: list[tuple[int, int]] = []
    keys = {(item.subscription_id, item.partition_key) for item in finished if item.partition_key}
    for key in keys:
        following = (
            Delivery.objects.filter(
                subscription_id=key[0], partition_key=key[1], status=Status.PENDING
            )
            .order_by("id")
            .values_list("id", "subscription_id")
            .first()
        )
        if following:
            rows.append(following)
    deliveries_enqueue_on_commit(rows)
