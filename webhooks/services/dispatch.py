"""Claiming deliveries, rate limits and handing them to the sender: the work of one ``deliver``
task."""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from core import mongo
from core.identity import EventKey, document_key
from subscriptions.models import Subscription
from webhooks import ratelimit
from webhooks.models import Delivery, message_id
from webhooks.payloads import build_request, envelope_of
from webhooks.sender import OutboundRequest, get_sender
from webhooks.services.claims import Claimed
from webhooks.services.outcomes import (
    RowUpdate,
    outstanding_batches,
    record_outcomes,
    record_when_done,
    recorder,
    update_rows,
)
from webhooks.services.queueing import (
    RELEASE_SECONDS,
    SUBSCRIPTIONS,
    TABLE,
    UNFINISHED,
    lease,
)

Status = Delivery.Status
Prepared = tuple[
    list[tuple[Claimed, OutboundRequest]],
    dict[int, Subscription],
    dict[EventKey, dict[str, Any]],
    list[Claimed],
]
logger = logging.getLogger(__name__)


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
                d.attempts - d.attempts_before_replay, d.traceparent
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
        update_rows(
            [RowUpdate(i, Status.PENDING, due, attempts_delta=-1) for i, due in waiting], now=now
        )
    return sorted(kept, key=lambda c: c.id)


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


def _release(claimed: list[Claimed]) -> None:
    """Give back claims whose batch failed before any request went out (MongoDB, Redis or
    PostgreSQL did not answer): due again in ``RELEASE_SECONDS``, not when the lease lapses,
    so deliveries flow again within seconds of the dependency's return. Claims already sent
    or released are no longer in flight and stay as they are."""
    now = timezone.now()
    due = now + timedelta(seconds=RELEASE_SECONDS)
    try:
        update_rows(
            [RowUpdate(c.id, Status.PENDING, due, attempts_delta=-1) for c in claimed], now=now
        )
    except Exception:  # noqa: BLE001 - PostgreSQL itself is down: the lease lapses instead
        logger.warning("could not give back %d claimed deliveries", len(claimed), exc_info=True)


def _prepare(claimed: list[Claimed], now: datetime, send_by: float) -> Prepared | None:
    """The signed requests of the claims that got a rate-limit token (None: not one did),
    with what recording their outcomes needs, and the claims whose event is gone. A request
    not started by ``send_by`` (``time.monotonic()``) is not started at all."""
    subscriptions = {
        s.pk: s
        for s in Subscription.objects.filter(
            pk__in={c.subscription_id for c in claimed}
        ).prefetch_related("secrets")
    }
    claimed = _apply_rate_limits(claimed, subscriptions, now)
    if not claimed:
        return None
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
            (
                item,
                OutboundRequest(
                    subscription.url,
                    body,
                    headers,
                    subscription.timeout_seconds,
                    traceparent=item.traceparent,
                    attempt=item.attempt,
                    send_by=send_by,
                ),
            )
        )
    return sendable, subscriptions, events, missing


def deliveries_send(*, ids: list[int], background: bool = False) -> int:
    """Claim, sign, send and record a batch of deliveries; returns how many were sent.

    The requests go out concurrently through the process's sender. With ``background`` (the
    Celery task) the outcomes are recorded by a recorder thread when they arrive and this
    returns at once. A worker that dies midway leaves its claims to lapse; the sweeper then
    queues them again.
    """
    now = timezone.now()
    # A claim lapses a lease after the request's timeout, and the sweeper then queues it
    # again. Requests wait for a connection to their endpoint, so a request is only started
    # within half the lease: it ends (answered or timed out) with half a lease to spare for
    # writing its outcome, and is never sent again while it is still in flight. Those that
    # waited longer are given back unsent.
    send_by = time.monotonic() + lease().total_seconds() / 2
    with transaction.atomic():
        _hold_inactive(ids, now)
        claimed = _claim(ids, now, now + lease())
    if not claimed:
        return 0
    try:
        prepared = _prepare(claimed, now, send_by)
    except Exception:
        _release(claimed)
        raise
    if prepared is None:
        return 0
    sendable, subscriptions, events, missing = prepared
    requests = [request for _, request in sendable]
    if not background:
        record_outcomes(sendable, get_sender().send_many(requests), subscriptions, events, missing)
        return len(sendable)
    # The worker thread does not wait for the answers: a slow endpoint then holds connections
    # and timers, not threads, and other batches keep flowing. A bounded number of batches is
    # outstanding per process; what waits in memory past ``send_by`` is given back unsent,
    # and a process that dies with batches outstanding leaves them to the sweeper.
    outstanding_batches().acquire()
    try:
        future = get_sender().submit(requests)
    except Exception:
        outstanding_batches().release()
        _release(claimed)
        raise
    future.add_done_callback(
        lambda done: recorder().submit(
            record_when_done, done, sendable, subscriptions, events, missing
        )
    )
    return len(sendable)
