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

from django.conf import settings

from core import kafka
from core.problems import DependencyUnavailable, ProblemError
from core.redis import get_redis
from events.envelope import kafka_headers, partition_key
from events.registry import CompiledType, registry
from events.storable import envelope_problems

logger = logging.getLogger(__name__)

SPOOL_KEY = "eventhub:publish-spool"
# the value of an idempotency claim while its event is being published
CLAIM_PENDING = b"pending"


class EventInvalid(ProblemError):
    status_code = HTTPStatus.UNPROCESSABLE_ENTITY
    default_code = "invalid-event"
    default_detail = "The event is refused: its errors name each fault."
    title = "Invalid event"


class BrokerUnavailable(DependencyUnavailable):
    default_detail = "The event broker is unavailable; nothing was published. Try again shortly."


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
    compiled = (lookup or registry.get)(envelope["type"])
    if compiled is None:
        return [{"pointer": "/type", "detail": f"unknown event type {envelope['type']!r}"}]
    if not compiled.enabled:
        return [{"pointer": "/type", "detail": f"event type {envelope['type']!r} is disabled"}]
    # what no schema can make storable (beyond 64 bits, NUL in keys, NaN, too deep)
    return envelope_problems(envelope) or compiled.errors(envelope.get("data"))


def encode(envelope: dict[str, Any]) -> bytes:
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
    *, envelopes: list[dict[str, Any]], wait: bool, request_id: str
) -> list[PublishOutcome]:
    """Validate, de-duplicate and publish ``envelopes``; one outcome per envelope, in order.

    Raises ``BrokerUnavailable`` when the broker took none of the valid new events, and
    ``DependencyUnavailable`` when Redis cannot be reached.
    """
    outcomes: list[PublishOutcome] = []
    candidates: list[int] = []
    for index, envelope in enumerate(envelopes):
        errors = event_validate(envelope)
        outcomes.append(
            PublishOutcome(
                PublishStatus.INVALID if errors else PublishStatus.NEW, envelope["id"], errors
            )
        )
        if not errors:
            candidates.append(index)
    if not candidates:
        return outcomes

    redis = get_redis()
    window = settings.IDEMPOTENCY_WINDOW_SECONDS
    pipe = redis.pipeline(transaction=False)
    for index in candidates:
        pipe.set(_idempotency_key(envelopes[index]), CLAIM_PENDING, nx=True, ex=window)
    claimed = [index for index, won in zip(candidates, pipe.execute(), strict=True) if won]
    for index in set(candidates) - set(claimed):
        outcomes[index].status = PublishStatus.DUPLICATE

    publisher = kafka.get_publisher()
    topic = settings.KAFKA_TOPIC_EVENTS
    futures = {}
    for index in claimed:
        envelope = envelopes[index]
        key = partition_key(envelope)
        try:
            futures[index] = publisher.publish(
                topic,
                encode(envelope),
                key=key.encode() if key else None,
                headers=kafka_headers(envelope, request_id),
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
    if failed:
        # Forget the claims so the producer can simply send the same events again.
        redis.delete(*[_idempotency_key(envelopes[index]) for index in failed])
    if failed and len(failed) == len(claimed):
        raise BrokerUnavailable()
    done = [index for index in claimed if outcomes[index].status == PublishStatus.ACCEPTED]
    if done:
        pipe = redis.pipeline(transaction=False)
        for index in done:
            pipe.set(_idempotency_key(envelopes[index]), b"done", ex=window)
        pipe.execute()
    return outcomes


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
