"""Writes for deliveries: sending them, scheduling retries, the dead-letter queue, replay.

The life of a delivery row (``Delivery.Status``):

- ``pending``: waiting for a worker. Whoever makes it pending (the pipeline, a retry, a replay,
  the sweeper) queues a ``deliver`` task after commit and sets ``next_attempt_at`` a lease
  ahead: if the task is lost, the sweeper queues it again then.
- ``in_flight``: claimed by one worker with a conditional update (a second copy of the task
  finds nothing to claim); the lease lapses if that worker dies, and the sweeper takes it back.
- ``retrying``: failed, due again at ``next_attempt_at`` (the subscription's schedule with
  jitter, or the endpoint's Retry-After). The sweeper is the one place retries start from.
- ``succeeded``, ``dead`` (published to the DLQ topic, kept here for replay), ``held`` (its
  subscription is paused or disabled; released when it is enabled again), ``cancelled``.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from collections import defaultdict
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import close_old_connections, connection, transaction
from django.db.models import F
from django.db.models.functions import Coalesce
from django.utils import timezone
from prometheus_client import Counter, Histogram

from accounts.services import audit_log_record
from core import kafka, mongo
from core.identity import TEST_SOURCE, EventKey, document_key
from core.problems import ProblemError
from subscriptions.models import Subscription
from subscriptions.services import subscription_set_state
from webhooks import backoff, ratelimit
from webhooks.models import Delivery, DeliveryAttempt, message_id
from webhooks.payloads import build_request, envelope_of, recorded_headers
from webhooks.sender import OutboundRequest, Outcome, get_sender

logger = logging.getLogger(__name__)

DELIVERY_ATTEMPTS = Counter(
    "webhook_attempts_total", "Webhook requests made", ["outcome"]
)  # outcome: success, retry, dead
DELIVERY_DURATION = Histogram(
    "webhook_attempt_seconds",
    "Duration of webhook requests",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)

Status = Delivery.Status
UNFINISHED = (Status.PENDING, Status.RETRYING, Status.IN_FLIGHT, Status.HELD)
RETRYABLE = {Status.DEAD, Status.RETRYING, Status.HELD, Status.CANCELLED}
TABLE = Delivery._meta.db_table
SUBSCRIPTIONS = Subscription._meta.db_table


class DeliveryNotRetryable(ProblemError):
    status_code = 409
    default_code = "delivery-not-retryable"
    title = "Delivery cannot be retried"


def _lease() -> timedelta:
    return timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)


# --- queueing ----------------------------------------------------------------------------------


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
            UPDATE {TABLE} d SET status = %s, next_attempt_at = %s
            WHERE d.id IN (
                SELECT id FROM {TABLE}
                WHERE status IN (%s, %s, %s) AND next_attempt_at <= %s
                ORDER BY next_attempt_at LIMIT %s FOR UPDATE SKIP LOCKED
            )
            RETURNING d.id, d.subscription_id
            """,
            [
                Status.PENDING,
                now + _lease(),
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


def _requeue(queryset, *, now: datetime) -> list[tuple[int, int]]:
    """Make the deliveries of ``queryset`` pending again with a fresh retry schedule."""
    rows = list(queryset.values_list("id", "subscription_id"))
    if rows:
        Delivery.objects.filter(id__in=[r[0] for r in rows]).update(
            status=Status.PENDING,
            next_attempt_at=now + _lease(),
            attempts_before_replay=F("attempts"),
            updated_at=now,
        )
        deliveries_enqueue_on_commit(rows)
    return rows


@transaction.atomic
def delivery_retry(*, delivery: Delivery, actor: AbstractBaseUser | None = None) -> Delivery:
    """Queue a finished or waiting delivery for another attempt now, with the same webhook-id.

    The claim is a conditional update, so two operators retrying at once queue it once.
    """
    now = timezone.now()
    claimed = Delivery.objects.select_for_update().filter(pk=delivery.pk, status__in=RETRYABLE)
    previous = claimed.values_list("status", flat=True).first()
    if previous is None or not _requeue(claimed, now=now):
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
    count = len(_requeue(queryset.select_for_update(skip_locked=True), now=timezone.now()))
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
        _requeue(
            subscription.deliveries.filter(status=Status.HELD).select_for_update(skip_locked=True),
            now=timezone.now(),
        )
    )
    audit_log_record(
        actor=actor, action="subscription.release_held", obj=subscription, changes={"count": count}
    )
    return count


# --- sending -----------------------------------------------------------------------------------


@dataclass
class Claimed:
    id: int
    event_id: str
    event_source: str
    subscription_id: int
    partition_key: str
    attempt: int  # this attempt's number
    retry_index: int  # attempts since the last operator retry or replay

    @property
    def event_key(self) -> EventKey:
        return self.event_source, self.event_id


def _hold_inactive(ids: list[int], now: datetime) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {TABLE} d SET status = %s, next_attempt_at = NULL, updated_at = %s
            FROM {SUBSCRIPTIONS} s
            WHERE d.id = ANY(%s) AND s.id = d.subscription_id AND s.state <> %s
              AND d.status = %s
            """,
            [Status.HELD, now, ids, Subscription.State.ACTIVE, Status.PENDING],
        )


def _claim(ids: list[int], now: datetime, lease_until: datetime) -> list[Claimed]:
    """Take the pending deliveries among ``ids`` (of active subscriptions); for ordered
    subscriptions, only those with no earlier unfinished delivery of the same key."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            UPDATE {TABLE} d SET status = %s, attempts = d.attempts + 1,
                next_attempt_at = %s + make_interval(secs => s.timeout_seconds), updated_at = %s
            FROM {SUBSCRIPTIONS} s
            WHERE d.id = ANY(%s) AND s.id = d.subscription_id AND s.state = %s
              AND d.status = %s
              AND (NOT s.ordered OR d.partition_key = '' OR NOT EXISTS (
                  SELECT 1 FROM {TABLE} p
                  WHERE p.subscription_id = d.subscription_id
                    AND p.partition_key = d.partition_key AND p.id < d.id
                    AND p.status IN (%s, %s, %s, %s)))
            RETURNING d.id, d.event_id, d.event_source, d.subscription_id, d.partition_key,
                d.attempts,
                d.attempts - d.attempts_before_replay
            """,
            [
                Status.IN_FLIGHT,
                lease_until,
                now,
                ids,
                Subscription.State.ACTIVE,
                Status.PENDING,
                *UNFINISHED,
            ],
        )
        return sorted((Claimed(*row) for row in cursor.fetchall()), key=lambda c: c.id)


def _apply_rate_limits(
    claimed: list[Claimed], subscriptions: dict[int, Subscription], now: datetime
) -> list[Claimed]:
    """Keep the deliveries that got a token; the others go back to pending, each due when a
    token will be there (not an attempt, not a failure)."""
    by_subscription: dict[int, list[Claimed]] = defaultdict(list)
    for item in claimed:
        by_subscription[item.subscription_id].append(item)
    kept: list[Claimed] = []
    waiting: list[tuple[int, datetime]] = []
    for subscription_id, items in by_subscription.items():
        rate = subscriptions[subscription_id].rate_limit_per_second
        if not rate:
            kept.extend(items)
            continue
        granted, wait = ratelimit.take(subscription_id, rate, len(items))
        kept.extend(items[:granted])
        for n, item in enumerate(items[granted:]):
            waiting.append((item.id, now + timedelta(seconds=wait + n / rate)))
    if waiting:
        _update_rows(
            [(i, Status.PENDING, due, None, None, None, -1) for i, due in waiting], now=now
        )
    return sorted(kept, key=lambda c: c.id)


def _update_rows(rows: list[tuple], *, now: datetime) -> None:
    """Write outcomes of in-flight deliveries: (id, status, next_attempt_at, status code,
    error or None to keep, delivered_at, attempts delta). Only rows still in flight change,
    so a worker whose claim lapsed cannot overwrite a newer one."""
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


def _load_events(keys: set[EventKey]) -> dict[EventKey, dict[str, Any]]:
    """The envelopes of the events named by (source, id); found by id through the unique
    index (``event_id``, ``source``), then kept only where the source matches too: another
    producer's event with the same id is never sent in their place."""
    documents = mongo.get_db()[mongo.EVENTS].find(
        {"event_id": {"$in": sorted({event_id for _, event_id in keys})}},
        {"_id": 0, "search_text": 0},
    )
    found = {}
    for document in documents:
        key = document_key(document)
        if key in keys:
            found[key] = envelope_of(document)
    return found


def deliveries_send(*, ids: list[int], background: bool = False) -> int:
    """Claim, sign, send and record a batch of deliveries; returns how many were sent.

    The requests go out concurrently through the process's sender. With ``background`` (the
    Celery task) the outcomes are recorded by a recorder thread when they arrive and this
    returns at once. A worker that dies midway leaves its claims to lapse; the sweeper then
    queues them again.
    """
    now = timezone.now()
    with transaction.atomic():
        _hold_inactive(ids, now)
        # the claim lapses a lease after the request's timeout: only a dead worker misses it
        claimed = _claim(ids, now, now + _lease())
    if not claimed:
        return 0
    subscriptions = {
        s.pk: s
        for s in Subscription.objects.filter(
            pk__in={c.subscription_id for c in claimed}
        ).prefetch_related("secrets")
    }
    claimed = _apply_rate_limits(claimed, subscriptions, now)
    if not claimed:
        return 0
    events = _load_events({c.event_key for c in claimed})

    timestamp = int(time.time())
    sendable: list[tuple[Claimed, OutboundRequest]] = []
    missing: list[Claimed] = []
    for item in claimed:
        envelope = events.get(item.event_key)
        if envelope is None:
            missing.append(item)
            continue
        subscription = subscriptions[item.subscription_id]
        body, headers = build_request(
            subscription,
            envelope,
            message_id=message_id(item.id),
            timestamp=timestamp,
            secrets=subscription.valid_secrets(now),
        )
        sendable.append(
            (item, OutboundRequest(subscription.url, body, headers, subscription.timeout_seconds))
        )
    requests = [request for _, request in sendable]
    if not background:
        _record(sendable, get_sender().send_many(requests), subscriptions, events, missing)
        return len(sendable)
    # The worker thread does not wait for the answers: a slow endpoint then holds connections
    # and timers, not threads, and other batches keep flowing. A bounded number of batches is
    # outstanding per process, so claims never wait long enough in memory for their lease to
    # lapse; a process that dies with batches outstanding leaves them to the sweeper.
    _outstanding().acquire()
    try:
        future = get_sender().submit(requests)
    except Exception:
        _outstanding().release()
        raise
    future.add_done_callback(
        lambda done: _recorder().submit(
            _record_when_done, done, sendable, subscriptions, events, missing
        )
    )
    return len(sendable)


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


def _recorder() -> ThreadPoolExecutor:
    return _recording_state()[0]


def _outstanding() -> threading.BoundedSemaphore:
    return _recording_state()[1]


def _record_when_done(
    done: Future,
    sendable: list[tuple[Claimed, OutboundRequest]],
    subscriptions: dict[int, Subscription],
    events: dict[EventKey, dict[str, Any]],
    missing: list[Claimed],
) -> None:
    """Write the outcomes of a batch sent in the background (in a recorder thread)."""
    close_old_connections()
    try:
        _record(sendable, done.result(), subscriptions, events, missing)
    except Exception:
        # the claims stay in flight; the sweeper takes them back when their lease lapses
        logger.exception("could not record the outcomes of %d deliveries", len(sendable))
    finally:
        _outstanding().release()
        close_old_connections()


def _attempt(
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
    )


def _record(
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
    for (item, request), outcome in zip(sendable, outcomes, strict=True):
        subscription = subscriptions[item.subscription_id]
        attempts.append(_attempt(item.id, item.attempt, subscription, request.headers, outcome))
        DELIVERY_DURATION.observe(outcome.duration_ms / 1000)
        health[item.subscription_id].append(outcome)
        if outcome.succeeded:
            rows.append((item.id, Status.SUCCEEDED, None, outcome.status, "", now, 0))
            DELIVERY_ATTEMPTS.labels(outcome="success").inc()
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
            rows.append((item.id, Status.RETRYING, due, outcome.status, error, None, 0))
            DELIVERY_ATTEMPTS.labels(outcome="retry").inc()
        else:
            rows.append((item.id, Status.DEAD, None, outcome.status, error, None, 0))
            dead.append((item, error, outcome.status))
            DELIVERY_ATTEMPTS.labels(outcome="dead").inc()
            if subscription.ordered:
                finished_ordered.append(item)
    for item in missing:
        error = "the event is no longer stored (its retention ended)"
        rows.append((item.id, Status.DEAD, None, None, error, None, 0))
        dead.append((item, error, None))

    with transaction.atomic():
        DeliveryAttempt.objects.bulk_create(attempts, ignore_conflicts=True)
        _update_rows(rows, now=now)
        for subscription_id, results in health.items():
            _record_health(subscriptions[subscription_id], results, now)
        for subscription_id in gone:
            subscription_disable(
                subscription=subscriptions[subscription_id],
                reason="The endpoint answered 410 Gone.",
            )
        _enqueue_successors(finished_ordered)
    if dead:
        _publish_dead(dead, subscriptions, events)


def _record_health(subscription: Subscription, results: list[Outcome], now: datetime) -> None:
    """Update the endpoint's health counters, and open the circuit breaker when it has failed
    ``WEBHOOK_BREAKER_FAILURES`` times in a row for at least ``WEBHOOK_BREAKER_SECONDS``."""
    succeeded = sum(1 for r in results if r.succeeded)
    last_success = max((i for i, r in enumerate(results) if r.succeeded), default=-1)
    trailing = len(results) - last_success - 1
    failures = [r for r in results if not r.succeeded]
    changes: dict[str, Any] = {
        "attempts_total": F("attempts_total") + len(results),
        "attempts_succeeded": F("attempts_succeeded") + succeeded,
    }
    if failures:
        changes["last_error"] = backoff.describe(failures[-1])
        changes["last_error_at"] = now
    if succeeded:
        changes["last_success_at"] = now
        changes["consecutive_failures"] = trailing
        changes["failing_since"] = now if trailing else None
    else:
        changes["consecutive_failures"] = F("consecutive_failures") + trailing
        changes["failing_since"] = Coalesce(F("failing_since"), now)
    queryset = Subscription.objects.filter(pk=subscription.pk)
    queryset.update(**changes)
    if succeeded or not failures:
        return
    state = queryset.values("consecutive_failures", "failing_since", "state").first()
    if (
        state
        and state["state"] == Subscription.State.ACTIVE
        and state["consecutive_failures"] >= settings.WEBHOOK_BREAKER_FAILURES
        and state["failing_since"] <= now - timedelta(seconds=settings.WEBHOOK_BREAKER_SECONDS)
    ):
        subscription_disable(
            subscription=subscription,
            reason=(
                f"{state['consecutive_failures']} failed attempts in a row since "
                f"{state['failing_since']:%Y-%m-%d %H:%M:%S} UTC; last: {changes['last_error']}"
            ),
        )


def subscription_disable(*, subscription: Subscription, reason: str) -> None:
    """Disable an endpoint on the system's own account (410 Gone, the circuit breaker).
    Its new deliveries are held from now on, not dropped."""
    subscription.refresh_from_db(fields=["state"])
    if subscription.state == Subscription.State.DISABLED:
        return
    logger.warning("disabling subscription %s: %s", subscription.pk, reason)
    subscription_set_state(
        subscription=subscription, state=Subscription.State.DISABLED, reason=reason[:500]
    )


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


def dlq_message(
    item: Claimed,
    subscription: Subscription,
    envelope: dict[str, Any] | None,
    error: str,
    status_code: int | None,
) -> bytes:
    return json.dumps(
        {
            "delivery_id": item.id,
            "message_id": message_id(item.id),
            "attempts": item.attempt,
            "last_error": error,
            "last_status_code": status_code,
            "dead_at": timezone.now().isoformat(),
            "subscription": {
                "id": subscription.pk,
                "name": subscription.name,
                "url": subscription.url,
            },
            "event": envelope or {"id": item.event_id, "source": item.event_source},
        },
        default=str,
    ).encode()


def _publish_dead(
    dead: list[tuple[Claimed, str, int | None]],
    subscriptions: dict[int, Subscription],
    events: dict[EventKey, dict[str, Any]],
) -> None:
    """Publish dead deliveries to the DLQ topic. They stay in PostgreSQL whatever happens
    here, so a broker outage costs the copy on Kafka, never the delivery itself."""
    publisher = kafka.get_publisher()
    futures = []
    try:
        for item, error, status_code in dead:
            subscription = subscriptions[item.subscription_id]
            futures.append(
                publisher.publish(
                    settings.KAFKA_TOPIC_DLQ,
                    dlq_message(item, subscription, events.get(item.event_key), error, status_code),
                    key=str(subscription.pk).encode(),
                    headers=[
                        ("ce_id", item.event_id.encode()),
                        ("ce_source", item.event_source.encode()),
                    ],
                )
            )
        for future in futures:
            future.result(settings.KAFKA_MESSAGE_TIMEOUT_MS / 1000 + 2)
    except Exception:
        logger.exception("could not publish %d dead deliveries to the DLQ topic", len(dead))


# --- test events -------------------------------------------------------------------------------


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
        outcome = Outcome(None, "", 0, "connection", f"the request could not be made: {exc}")
    _attempt(delivery.pk, 1, subscription, headers, outcome).save()
    finished = timezone.now()
    if outcome.succeeded:
        row = (delivery.pk, Status.SUCCEEDED, None, outcome.status, "", finished, 0)
    else:
        row = (delivery.pk, Status.DEAD, None, outcome.status, backoff.describe(outcome), None, 0)
    _update_rows([row], now=finished)
    delivery.refresh_from_db()
    audit_log_record(
        actor=actor,
        action="subscription.test",
        obj=subscription,
        changes={"delivery": delivery.pk, "status": delivery.status},
    )
    return delivery
