"""The pipeline: consume ``eventhub.events`` in batches, mirror, route, evaluate rules and
create deliveries, at least once and never stuck.

For each batch, in this order: (1) insert the raw events into MongoDB if absent, (2) route
them to subscriptions and evaluate rules, (3) write deliveries and rule matches in one PostgreSQL
transaction (unique keys make a replayed batch add nothing), (4) queue the new deliveries' tasks
after commit, publish rule actions and quarantined messages to Kafka, (5) commit the offsets.
A crash anywhere replays the batch.

A message that cannot be parsed or validated goes to the quarantine topic with the reason and
its original topic, partition and offset in headers, and the consumer moves on.

The same loop runs standalone (``manage.py consume_events``) and inside the Celery worker (the
bootstep in ``events.bootsteps``).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from confluent_kafka import Consumer, KafkaError, Message, TopicPartition
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from prometheus_client import Counter
from pymongo.errors import BulkWriteError

from eventhub import kafka, mongo
from events.documents import event_document
from events.envelope import EnvelopeError, from_structured, partition_key
from events.registry import registry
from events.services import encode, event_validate
from rules.engine import RuleSet, rule_set_load, rules_stamp
from rules.models import Rule, RuleMatch
from subscriptions.routing import RoutingTable, routing_stamp, routing_table_load
from webhooks.models import Delivery
from webhooks.services import deliveries_enqueue_on_commit

logger = logging.getLogger(__name__)

EVENTS_CONSUMED = Counter("pipeline_events_total", "Events mirrored and routed by the pipeline")
EVENTS_QUARANTINED = Counter("pipeline_quarantined_total", "Messages sent to quarantine")
DUPLICATE_KEY = 11000
DELIVERIES_CREATED = Counter("pipeline_deliveries_total", "Delivery rows written (new or not)")


@dataclass
class BatchResult:
    events: int = 0
    quarantined: int = 0
    deliveries: int = 0
    matches: int = 0
    mirrored: list[str] = field(default_factory=list)


def consumer_config() -> dict[str, Any]:
    return {
        **kafka.base_config(),
        "group.id": settings.PIPELINE_GROUP_ID,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.KAFKA_SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": max(1000, settings.KAFKA_SESSION_TIMEOUT_MS // 6),
        "max.poll.interval.ms": 300000,
        "fetch.min.bytes": 1,
        # how long the broker may hold a fetch while waiting for data: librdkafka's 500 ms
        # default is the pipeline's latency on brokers that hold it to the end (Tansu)
        "fetch.wait.max.ms": settings.PIPELINE_FETCH_WAIT_MS,
    }


class Configuration:
    """The routing table and rules, reloaded when their stamps change (checked per batch)."""

    def __init__(self) -> None:
        self._stamps: tuple | None = None
        self.routes: RoutingTable = RoutingTable([])
        self.rules: RuleSet = RuleSet([])

    def refresh(self) -> None:
        stamps = (routing_stamp(), rules_stamp())
        if stamps != self._stamps:
            self.routes = routing_table_load()
            self.rules = rule_set_load()
            self._stamps = stamps


def quarantine_headers(message: Message, reason: str) -> list[tuple[str, bytes]]:
    return [
        *(message.headers() or []),
        ("x-quarantine-reason", reason[:1000].encode()),
        ("x-original-topic", message.topic().encode()),
        ("x-original-partition", str(message.partition()).encode()),
        ("x-original-offset", str(message.offset()).encode()),
    ]


def decode(message: Message) -> tuple[dict[str, Any] | None, str]:
    """The envelope of a message, or None and the reason it cannot be used."""
    try:
        document = json.loads(message.value())
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        return None, f"not JSON: {exc}"
    if not isinstance(document, dict):
        return None, "not an event envelope: the message is not a JSON object"
    missing = [name for name in ("id", "source", "type") if not document.get(name)]
    if missing:
        # without them a replay could not be recognised as the same event
        return None, f"not an event envelope: missing {', '.join(missing)}"
    if "time" not in document:
        kind, millis = message.timestamp()
        if millis > 0:
            document["time"] = datetime.fromtimestamp(millis / 1000, tz=UTC).isoformat()
    try:
        envelope = from_structured(document, default_source="")
    except EnvelopeError as exc:
        return None, f"not an event envelope: {exc}"
    problems = event_validate(envelope)
    if problems:
        return None, "; ".join(f"{p['pointer']}: {p['detail']}" for p in problems)
    return envelope, ""


def mirror(documents: list[dict[str, Any]]) -> None:
    """Insert the documents that are not stored yet (the unique index on ``event_id`` refuses
    the others): insert-if-absent at insert_many speed, several times faster than upserts."""
    try:
        mongo.get_db()[mongo.EVENTS].insert_many(documents, ordered=False)
    except BulkWriteError as exc:
        others = [e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
        if others or exc.details.get("writeConcernErrors"):
            raise
    finally:
        for document in documents:
            document.pop("_id", None)  # insert_many adds it; callers keep plain documents


DELIVERY_LOAD_COLUMNS = (
    "event_id",
    "event_type",
    "subscription_id",
    "rule_id",
    "partition_key",
    "status",
)


def insert_deliveries(deliveries: list[tuple]) -> list[tuple[int, int]]:
    """Insert-if-absent the deliveries of a batch: COPY into a temporary table, then one
    ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` (the unique key is event, subscription,
    rule). Several times faster than ``bulk_create`` for thousands of rows.

    Returns (id, subscription id) of the new pending rows, to be queued after commit; rows a
    replayed batch finds already there were queued the first time (or the sweeper queues them
    when their lease, set here, lapses)."""
    if not deliveries:
        return []
    table = Delivery._meta.db_table
    columns = ", ".join(DELIVERY_LOAD_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TEMP TABLE IF NOT EXISTS pipeline_delivery_load ("
            "event_id varchar(255), event_type varchar(200), subscription_id bigint, "
            "rule_id bigint, partition_key varchar(255), status varchar(10)"
            ") ON COMMIT DELETE ROWS"
        )
        with cursor.cursor.copy(f"COPY pipeline_delivery_load ({columns}) FROM STDIN") as copy:
            for row in deliveries:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table} ({columns}, attempts, attempts_before_replay, last_error, "
            "is_test, created_at, updated_at, next_attempt_at) "
            f"SELECT {columns}, 0, 0, '', false, now(), now(), "
            "CASE WHEN status = %s THEN now() + make_interval(secs => %s) END "
            "FROM pipeline_delivery_load ON CONFLICT DO NOTHING "
            "RETURNING id, subscription_id, status",
            [Delivery.Status.PENDING, settings.WEBHOOK_LEASE_SECONDS],
        )
        return [(row[0], row[1]) for row in cursor.fetchall() if row[2] == Delivery.Status.PENDING]


def process_batch(messages: list[Message], configuration: Configuration) -> BatchResult:
    """Steps 1-4 for a batch of messages (offsets are the caller's)."""
    result = BatchResult()
    received_at = datetime.now(tz=UTC)
    documents: list[dict[str, Any]] = []
    envelopes: dict[str, dict[str, Any]] = {}
    quarantine: list[tuple[Message, str]] = []
    for message in messages:
        envelope, reason = decode(message)
        if envelope is None:
            quarantine.append((message, reason))
            continue
        compiled = registry.get(envelope["type"])
        retention = compiled.retention_days if compiled else settings.DEFAULT_RETENTION_DAYS
        document = event_document(envelope, retention_days=retention, received_at=received_at)
        documents.append(document)
        envelopes[document["event_id"]] = envelope

    # 1. mirror: one document per event; a replay leaves the first copy as it was
    if documents:
        mirror(documents)

    # 2. route and evaluate rules
    configuration.refresh()
    deliveries: list[tuple] = []
    for document in documents:
        for route in configuration.routes.match(document):
            deliveries.append(_delivery(document, route.subscription_id, None, route.held))
    matches: list[RuleMatch] = []
    publishes: list[tuple[str, dict[str, Any]]] = []
    for firing in configuration.rules.evaluate(documents):
        notification = ""
        for action in firing.rule.actions:
            kind = action.get("type")
            if kind == Rule.ActionType.DELIVER:
                subscription_id = action["subscription"]
                state = configuration.routes.states.get(subscription_id)
                if state is None:
                    logger.warning(
                        "rule %s delivers to missing subscription %s", firing.rule, subscription_id
                    )
                    continue
                deliveries.append(
                    _delivery(firing.document, subscription_id, firing.rule, state != "active")
                )
            elif kind == Rule.ActionType.NOTIFY:
                notification = action.get("message", "")
            elif kind == Rule.ActionType.PUBLISH:
                publishes.append((action["topic"], envelopes[firing.document["event_id"]]))
        matches.append(
            RuleMatch(
                rule=firing.rule,
                event_id=firing.document["event_id"],
                event_type=firing.document["type"],
                threshold_key=firing.key,
                notification=notification,
            )
        )

    # 3. deliveries and matches in one transaction; a replay conflicts and adds nothing
    with transaction.atomic():
        created = insert_deliveries(deliveries)
        RuleMatch.objects.bulk_create(matches, ignore_conflicts=True, batch_size=1000)
        deliveries_enqueue_on_commit(created)

    # 4. rule publications and quarantine, acknowledged before offsets move
    publisher = kafka.get_publisher()
    futures = [
        publisher.publish(topic, encode(envelope), key=_key(envelope))
        for topic, envelope in publishes
    ]
    for message, reason in quarantine:
        futures.append(
            publisher.publish(
                settings.KAFKA_TOPIC_QUARANTINE,
                message.value() or b"",
                key=message.key(),
                headers=quarantine_headers(message, reason),
            )
        )
        logger.warning(
            "quarantined %s[%s]@%s: %s",
            message.topic(),
            message.partition(),
            message.offset(),
            reason,
        )
    for future in futures:
        future.result(settings.KAFKA_MESSAGE_TIMEOUT_MS / 1000 + 2)

    result.events = len(documents)
    result.quarantined = len(quarantine)
    result.deliveries = len(deliveries)
    result.matches = len(matches)
    result.mirrored = [d["event_id"] for d in documents]
    EVENTS_CONSUMED.inc(result.events)
    EVENTS_QUARANTINED.inc(result.quarantined)
    DELIVERIES_CREATED.inc(result.deliveries)
    return result


def _key(envelope: dict[str, Any]) -> bytes | None:
    key = partition_key(envelope)
    return key.encode() if key else None


def _delivery(
    document: dict[str, Any], subscription_id: int, rule: Rule | None, held: bool
) -> tuple:
    """A delivery row in ``DELIVERY_LOAD_COLUMNS`` order (plain tuples: thousands per batch)."""
    return (
        document["event_id"],
        document["type"],
        subscription_id,
        rule.pk if rule is not None else None,
        (document.get("partition_key") or "")[:255],
        Delivery.Status.HELD if held else Delivery.Status.PENDING,
    )


def next_offsets(messages: Iterable[Message]) -> list[TopicPartition]:
    """The offsets to commit after ``messages``: one past the last of each partition."""
    last: dict[tuple[str, int], int] = {}
    for message in messages:
        key = (message.topic(), message.partition())
        last[key] = max(last.get(key, -1), message.offset())
    return [TopicPartition(t, p, o + 1) for (t, p), o in last.items()]


class PipelineConsumer:
    """The consume loop. ``stop()`` (or SIGTERM in the command) finishes the batch, commits
    and closes."""

    def __init__(self, *, batch_size: int | None = None, batch_timeout_ms: int | None = None):
        self.batch_size = batch_size or settings.PIPELINE_BATCH_SIZE
        self.batch_timeout = (batch_timeout_ms or settings.PIPELINE_BATCH_TIMEOUT_MS) / 1000
        self.configuration = Configuration()
        self._stopping = threading.Event()
        self._assigned_at: float | None = None
        self.first_batch_at: float | None = None  # for throughput figures (after the join)
        self.consumer: Consumer | None = None

    def stop(self) -> None:
        self._stopping.set()

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        self._assigned_at = time.monotonic()
        logger.info("partitions assigned: %s", [(p.topic, p.partition) for p in partitions])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Batches are processed and committed before the next consume(), so nothing
        # uncommitted is ours when a rebalance takes partitions away.
        logger.info("partitions revoked: %s", [(p.topic, p.partition) for p in partitions])

    def run(self, *, max_events: int | None = None, idle_exit_seconds: float | None = None) -> int:
        """Consume until stopped (or, for tests and benchmarks, until ``max_events`` were
        processed or nothing arrived for ``idle_exit_seconds``); returns events processed."""
        self.consumer = Consumer(consumer_config())
        self.consumer.subscribe(
            [settings.KAFKA_TOPIC_EVENTS], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        processed = failures = 0
        idle_since = None
        try:
            while not self._stopping.is_set():
                messages = self.consumer.consume(self.batch_size, timeout=self.batch_timeout)
                usable = [m for m in messages if not self._is_error(m)]
                if not usable:
                    # idleness counts only once partitions are ours: joining a group can take
                    # a while after a member died (until its session times out)
                    idle_since = idle_since or self._assigned_at
                    if (
                        idle_exit_seconds
                        and idle_since is not None
                        and time.monotonic() - idle_since > idle_exit_seconds
                    ):
                        break
                    continue
                idle_since = time.monotonic()
                if self.first_batch_at is None:
                    self.first_batch_at = idle_since
                close_old_connections()
                try:
                    result = process_batch(usable, self.configuration)
                except Exception:
                    # MongoDB, PostgreSQL, Redis or the broker failed: nothing was committed,
                    # so rewind to the batch's start and try it again after a pause.
                    failures += 1
                    pause = min(30.0, 0.5 * 2**failures)
                    logger.exception("batch failed; retrying it in %.1f s", pause)
                    self._rewind(usable)
                    self._stopping.wait(pause)
                    continue
                failures = 0
                self.consumer.commit(offsets=next_offsets(usable), asynchronous=False)
                processed += result.events + result.quarantined
                if max_events is not None and processed >= max_events:
                    break
        finally:
            self.consumer.close()
        return processed

    def _rewind(self, messages: list[Message]) -> None:
        first: dict[tuple[str, int], int] = {}
        for message in messages:
            key = (message.topic(), message.partition())
            first[key] = min(first.get(key, message.offset()), message.offset())
        for (topic, partition), offset in first.items():
            self.consumer.seek(TopicPartition(topic, partition, offset))

    @staticmethod
    def _is_error(message: Message) -> bool:
        error = message.error()
        if error is None:
            return False
        if error.code() != KafkaError._PARTITION_EOF:
            logger.warning("consumer error: %s", error)
        return True
