"""Publishing events: one ingest service behind REST, GraphQL and gRPC.

For each envelope: the type must exist and be enabled, the data must satisfy the type's JSON
Schema, and ``source`` + ``id`` must not have been seen within the idempotency window (Redis).
Accepted events go to the events topic keyed by their partition key. Synchronous publishing
answers once the broker acknowledged (acks=all); asynchronous publishing answers once the
producer holds the event, and an event the broker then refuses is kept in a Redis spool that a
periodic task publishes again, so nothing accepted is lost.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Callable
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from enum import StrEnum
from http import HTTPStatus
from typing import Any

import orjson
from django.conf import settings
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import Counter

from core import kafka, tracing
from core.correlation import current_request_id, new_request_id
from core.problems import DependencyUnavailable, ProblemError
from core.redis import get_redis
from events.envelope import kafka_headers, partition_key
from events.registry import CompiledType, registry
from events.storable import envelope_problems

logger = logging.getLogger(__name__)

SPOOL_KEY = "eventhub:publish-spool"
# the value of an idempotency claim while its event is being published
CLAIM_PENDING = b"pending"
# ... and once the broker acknowledged it: a repeat is a duplicate
CLAIM_DONE = b"done"


class EventInvalid(ProblemError):
    status_code = HTTPStatus.UNPROCESSABLE_ENTITY
    default_code = "invalid-event"
    default_detail = "The event is refused: its errors name each fault."
    title = "Invalid event"


class BrokerUnavailable(DependencyUnavailable):
    default_detail = "The event broker is unavailable; nothing was published. Try again shortly."


class PublishInProgress(DependencyUnavailable):
    default_code = "publish-in-progress"
    default_detail = (
        "An earlier request with this event has not been answered yet; nothing was published. "
        "Send it again shortly."
    )


IN_PROGRESS_DETAIL = PublishInProgress.default_detail


def claim_seconds() -> int:
    """How long an idempotency claim stays pending: past the longest a publish can wait for
    the broker, so only a try whose process died leaves one behind, and not for long."""
    return int(settings.KAFKA_MESSAGE_TIMEOUT_MS / 1000) + 10


class Door(StrEnum):
    """Where an event came in (``events_ingested_total{door}``)."""

    REST = "rest"
    GRAPHQL = "graphql"
    GRPC = "grpc"


class RejectReason(StrEnum):
    """Why an event was refused (``events_rejected_total{reason}``)."""

    UNREADABLE = "unreadable"  # not an event in any accepted form
    UNKNOWN_TYPE = "unknown_type"
    DISABLED_TYPE = "disabled_type"
    INVALID = "invalid"  # its data fails the type's schema, or cannot be stored
    BROKER = "broker"  # the broker did not take it (the producer may send it again)
    IN_PROGRESS = "in_progress"  # an earlier try of the same event is unanswered (send again)


EVENTS_INGESTED = Counter(
    "events_ingested_total", "Events accepted for the events topic", ["type", "door"]
)
EVENTS_REJECTED = Counter("events_rejected_total", "Events refused at ingest", ["reason"])


class PublishStatus(StrEnum):
    """What happened to one published event (``NEW``: being published, never answered)."""

    NEW = "new"
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    INVALID = "invalid"
    FAILED = "failed"


# the answers a producer can get, in the order the APIs list them
ANSWERS = (
    PublishStatus.ACCEPTED,
    PublishStatus.DUPLICATE,
    PublishStatus.INVALID,
    PublishStatus.FAILED,
)


@dataclass
class PublishOutcome:
    """What happened to one event: accepted, duplicate, invalid or failed."""

    status: PublishStatus
    id: str | None = None
    errors: list[dict[str, str]] = field(default_factory=list)
    partition: int | None = None
    offset: int | None = None
    reason: RejectReason | None = None  # why it was refused (invalid, failed)

    def as_dict(self) -> dict[str, Any]:
        body: dict[str, Any] = {"status": self.status.value, "id": self.id}
        if self.errors:
            body["errors"] = self.errors
        return body


def outcomes_tally(outcomes: list[PublishOutcome]) -> dict[PublishStatus, int]:
    """How many outcomes of a batch got each answer (REST and gRPC batches report them)."""
    return {status: sum(1 for o in outcomes if o.status == status) for status in ANSWERS}


def _idempotency_key(envelope: dict[str, Any]) -> str:
    source = hashlib.sha256(envelope["source"].encode()).hexdigest()[:24]
    return f"eventhub:seen:{source}:{envelope['id']}"


def event_validate(
    envelope: dict[str, Any], *, lookup: Callable[[str], CompiledType | None] | None = None
) -> list[dict[str, str]]:
    """Problems with the event's type or data (empty when it may be published): its data and
    metadata must be storable (``events.storable``) and the data must satisfy the type's
    schema. ``lookup`` finds the type instead of ``registry.get`` (the pipeline looks each type
    up once a batch)."""
    return _refusal(envelope, lookup or registry.get)[1]


def _refusal(
    envelope: dict[str, Any], lookup: Callable[[str], CompiledType | None]
) -> tuple[RejectReason | None, list[dict[str, str]]]:
    compiled = lookup(envelope["type"])
    if compiled is None:
        detail = f"unknown event type {envelope['type']!r}"
        return RejectReason.UNKNOWN_TYPE, [{"pointer": "/type", "detail": detail}]
    if not compiled.enabled:
        detail = f"event type {envelope['type']!r} is disabled"
        return RejectReason.DISABLED_TYPE, [{"pointer": "/type", "detail": detail}]
    # what no schema can make storable (beyond 64 bits, NUL in keys, NaN, too deep)
    errors = envelope_problems(envelope) or compiled.errors(envelope.get("data"))
    return (RejectReason.INVALID if errors else None), errors


def events_rejected(reason: RejectReason, count: int = 1) -> None:
    """Count events refused before they reach the ingest service (unreadable forms)."""
    EVENTS_REJECTED.labels(reason).inc(count)


def encode(envelope: dict[str, Any]) -> bytes:
    """The message's value: compact UTF-8 JSON, through orjson (several times faster; it
    writes the same values), or json where orjson refuses what json writes."""
    try:
        return orjson.dumps(envelope)
    except (orjson.JSONEncodeError, TypeError):
        return json.dumps(envelope, separators=(",", ":"), ensure_ascii=False).encode()


def _spool(topic: str, value: bytes, key: bytes | None, headers, reason: str) -> None:
    """Keep a message the broker refused after we answered, for ``events_republish_spooled``."""
    record = {
        "topic": topic,
        "value": base64.b64encode(value).decode(),
        "key": base64.b64encode(key).decode() if key is not None else None,
        "headers": [[name, base64.b64encode(data).decode()] for name, data in headers],
    }
    get_redis().rpush(SPOOL_KEY, json.dumps(record))
    logger.warning("broker refused an accepted event (%s); kept in the spool", reason)


def events_publish(
    *,
    envelopes: list[dict[str, Any]],
    wait: bool,
    door: Door,
    request_id: str | None = None,
) -> list[PublishOutcome]:
    """Validate, de-duplicate and publish ``envelopes``; one outcome per envelope, in order.
    ``request_id`` (by default the current request's) goes into the messages' headers.

    Raises ``BrokerUnavailable`` when the broker took none of the valid new events,
    ``PublishInProgress`` when every valid event is an earlier, unanswered try's (its process
    may have died: the claim lapses after ``claim_seconds()``, then the event is published
    afresh) and ``DependencyUnavailable`` when Redis cannot be reached.
    """
    outcomes: list[PublishOutcome] = []
    try:
        with tracing.tracer.start_as_current_span(
            "ingest", attributes={"eventhub.door": door.value, "eventhub.events": len(envelopes)}
        ):
            _publish(
                envelopes,
                outcomes,
                wait=wait,
                request_id=request_id or current_request_id() or new_request_id(),
            )
    finally:
        # counted whatever happened, a broker that took none of them included
        _count(envelopes, outcomes, door)
    return outcomes


def _count(envelopes: list[dict[str, Any]], outcomes: list[PublishOutcome], door: Door) -> None:
    rejected: dict[RejectReason, int] = {}
    for envelope, outcome in zip(envelopes, outcomes, strict=False):
        if outcome.status == PublishStatus.ACCEPTED:
            EVENTS_INGESTED.labels(envelope["type"], door.value).inc()
        elif outcome.reason is not None:
            rejected[outcome.reason] = rejected.get(outcome.reason, 0) + 1
    for reason, count in rejected.items():
        EVENTS_REJECTED.labels(reason.value).inc(count)


def _publish(
    envelopes: list[dict[str, Any]],
    outcomes: list[PublishOutcome],
    *,
    wait: bool,
    request_id: str,
) -> None:
    """Fill ``outcomes``, one per envelope, in order."""
    candidates: list[int] = []
    for index, envelope in enumerate(envelopes):
        reason, errors = _refusal(envelope, registry.get)
        outcomes.append(
            PublishOutcome(
                PublishStatus.INVALID if errors else PublishStatus.NEW,
                envelope["id"],
                errors,
                reason=reason,
            )
        )
        if not errors:
            candidates.append(index)
    if not candidates:
        return

    redis = get_redis()
    window = settings.IDEMPOTENCY_WINDOW_SECONDS
    pipe = redis.pipeline(transaction=False)
    for index in candidates:
        pipe.set(_idempotency_key(envelopes[index]), CLAIM_PENDING, nx=True, ex=claim_seconds())
    claimed = [index for index, won in zip(candidates, pipe.execute(), strict=True) if won]
    # a repeat within this very batch is the duplicate of the item this call publishes
    ours = {_idempotency_key(envelopes[index]) for index in claimed}
    repeats = []
    for index in sorted(set(candidates) - set(claimed)):
        if _idempotency_key(envelopes[index]) in ours:
            outcomes[index].status = PublishStatus.DUPLICATE
        else:
            repeats.append(index)
    if repeats:
        # a claim still pending is a try that has not been answered: still being published,
        # or its process died before the broker answered. Either way the event may not be on
        # the topic, so it is not a duplicate yet: the producer sends it again, and once the
        # claim lapses (a dead try's) the event is published afresh.
        pipe = redis.pipeline(transaction=False)
        for index in repeats:
            pipe.get(_idempotency_key(envelopes[index]))
        for index, value in zip(repeats, pipe.execute(), strict=True):
            if value == CLAIM_DONE:
                outcomes[index].status = PublishStatus.DUPLICATE
            else:
                outcomes[index].status = PublishStatus.FAILED
                outcomes[index].reason = RejectReason.IN_PROGRESS
                outcomes[index].errors = [{"pointer": "/", "detail": IN_PROGRESS_DETAIL}]
    in_progress = [i for i in repeats if outcomes[i].status == PublishStatus.FAILED]
    if in_progress and len(in_progress) == len(candidates):
        raise PublishInProgress()

    publisher = kafka.get_publisher()
    topic = settings.KAFKA_TOPIC_EVENTS
    futures = {}
    spans = _EventSpans(topic) if tracing.enabled() else None
    for index in claimed:
        envelope = envelopes[index]
        key = partition_key(envelope)
        headers = kafka_headers(envelope, request_id)
        if spans is not None:
            headers.append((tracing.TRACEPARENT, spans.start(index, envelope).encode()))
        try:
            futures[index] = publisher.publish(
                topic,
                encode(envelope),
                key=key.encode() if key else None,
                headers=headers,
                on_failure=None if wait else _spool,
            )
        except kafka.PublishError as exc:
            outcomes[index].status = PublishStatus.FAILED
            outcomes[index].errors = [{"pointer": "/", "detail": str(exc)}]

    if wait:
        timeout = settings.KAFKA_MESSAGE_TIMEOUT_MS / 1000 + 2
        for index, future in futures.items():
            try:
                outcomes[index].partition, outcomes[index].offset = future.result(timeout)
                outcomes[index].status = PublishStatus.ACCEPTED
            except (kafka.PublishError, FutureTimeout) as exc:
                outcomes[index].status = PublishStatus.FAILED
                outcomes[index].errors = [{"pointer": "/", "detail": f"broker: {exc}"}]
    else:
        for index in futures:
            outcomes[index].status = PublishStatus.ACCEPTED

    failed = [index for index in claimed if outcomes[index].status == PublishStatus.FAILED]
    for index in failed:
        outcomes[index].reason = RejectReason.BROKER
    if spans is not None:
        spans.end(outcomes)
    if failed:
        # Forget the claims so the producer can simply send the same events again.
        redis.delete(*[_idempotency_key(envelopes[index]) for index in failed])
    if failed and len(failed) == len(claimed):
        raise BrokerUnavailable()
    done = [index for index in claimed if outcomes[index].status == PublishStatus.ACCEPTED]
    if done:
        pipe = redis.pipeline(transaction=False)
        for index in done:
            pipe.set(_idempotency_key(envelopes[index]), CLAIM_DONE, ex=window)
        pipe.execute()


class _EventSpans:
    """``persist_event`` and its ``produce`` child for each event published (tracing on):
    the producer span's context goes into the message's ``traceparent`` header, and both end
    with the event's outcome (after the broker's acknowledgement when publishing waits)."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.spans: dict[int, tuple[Any, Any]] = {}

    def start(self, index: int, envelope: dict[str, Any]) -> str:
        persist = tracing.tracer.start_span(
            "persist_event",
            attributes={
                "eventhub.event.type": envelope["type"],
                "cloudevents.event_id": envelope["id"],
            },
        )
        produce = tracing.tracer.start_span(
            "produce",
            context=trace.set_span_in_context(persist),
            kind=SpanKind.PRODUCER,
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "send",
                "messaging.destination.name": self.topic,
            },
        )
        self.spans[index] = (persist, produce)
        return tracing.traceparent_of(produce)

    def end(self, outcomes: list[PublishOutcome]) -> None:
        for index, (persist, produce) in self.spans.items():
            outcome = outcomes[index]
            if outcome.partition is not None:
                produce.set_attribute("messaging.destination.partition.id", str(outcome.partition))
            if outcome.status == PublishStatus.FAILED:
                detail = outcome.errors[0]["detail"] if outcome.errors else "failed"
                for span in (produce, persist):
                    span.set_status(Status(StatusCode.ERROR, detail))
            produce.end()
            persist.end()


def events_republish_spooled(*, limit: int = 1000) -> int:
    """Publish spooled messages again (synchronously); return how many the broker took."""
    redis = get_redis()
    publisher = kafka.get_publisher()
    sent = 0
    for _ in range(limit):
        raw = redis.lpop(SPOOL_KEY)
        if raw is None:
            break
        record = json.loads(raw)
        try:
            publisher.publish(
                record["topic"],
                base64.b64decode(record["value"]),
                key=base64.b64decode(record["key"]) if record["key"] else None,
                headers=[(name, base64.b64decode(data)) for name, data in record["headers"]],
            ).result(settings.KAFKA_MESSAGE_TIMEOUT_MS / 1000 + 2)
        except (kafka.PublishError, FutureTimeout):
            redis.lpush(SPOOL_KEY, raw)  # back at the head: order is kept, nothing is lost
            break
        sent += 1
    return sent
