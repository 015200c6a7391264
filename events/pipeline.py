"""The pipeline: consume ``eventhub.events`` in batches, mirror, route, evaluate rules and
create deliveries, at least once and never stuck.

For each batch, in this order: (1) insert the raw events into MongoDB if absent, (2) route
them to subscriptions and evaluate rules, (3) write deliveries and rule matches in one PostgreSQL
transaction (unique keys make a replayed batch add nothing), (4) queue the new deliveries' tasks
after commit, publish rule actions and quarantined messages to Kafka, (5) commit the offsets.
A crash anywhere replays the batch.

A batch goes through in chunks of a few hundred messages, so that the servers work while
Python does: MongoDB stores a chunk's events (sent from threads of their own) and PostgreSQL
inserts its deliveries (sent without waiting, in pipeline mode) while the next chunk is decoded
and routed. Steps 1-3 keep their order for every event, and the transaction commits only once
every chunk is stored in MongoDB: a delivery is never visible before its event.

A message that cannot be parsed or validated goes to the quarantine topic with the reason and
its original topic, partition and offset in headers, and the consumer moves on.

The same loop runs standalone (``manage.py consume_events``) and inside the Celery worker (the
bootstep in ``events.bootsteps``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from concurrent.futures import wait as futures_wait
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
import orjson
import psycopg
from bson.raw_bson import RawBSONDocument
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db import utils as db_errors
from prometheus_client import Counter
from pymongo import errors as pymongo_errors
from pymongo.errors import BulkWriteError
from redis import exceptions as redis_errors

from eventhub import kafka, mongo
from eventhub.identity import EventKey, document_key, envelope_key
from events.documents import event_document
from events.envelope import EnvelopeError, from_structured, partition_key
from events.lag import LagWatch
from events.registry import CompiledType, registry
from events.services import encode, event_validate
from rules.engine import Firing, RuleSet, rule_set_load, rules_stamp
from rules.models import Rule, RuleMatch
from subscriptions.routing import RoutingTable, routing_stamp, routing_table_load
from webhooks.models import Delivery
from webhooks.services import deliveries_enqueue_on_commit

logger = logging.getLogger(__name__)

EVENTS_CONSUMED = Counter("pipeline_events_total", "Events mirrored and routed by the pipeline")
EVENTS_QUARANTINED = Counter("pipeline_quarantined_total", "Messages sent to quarantine")
DUPLICATE_KEY = 11000
DELIVERIES_CREATED = Counter("pipeline_deliveries_total", "Delivery rows written (new or not)")
HELD, PENDING = str(Delivery.Status.HELD), str(Delivery.Status.PENDING)


@dataclass
class BatchResult:
    events: int = 0
    quarantined: int = 0
    deliveries: int = 0
    matches: int = 0
    mirrored: list[EventKey] = field(default_factory=list)


def consumer_config() -> dict[str, Any]:
    return {
        **kafka.base_config(),
        "group.id": settings.PIPELINE_GROUP_ID,
        "enable.auto.commit": False,
        "auto.offset.reset": "earliest",
        "session.timeout.ms": settings.KAFKA_SESSION_TIMEOUT_MS,
        "heartbeat.interval.ms": max(1000, settings.KAFKA_SESSION_TIMEOUT_MS // 6),
        "max.poll.interval.ms": 300000,
        # Kafka answers a fetch as soon as one byte is there, or after fetch.wait.max.ms with
        # nothing: the wait bounds idle round trips, not latency
        "fetch.min.bytes": 1,
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


# a run of 19 digits or more may be a number orjson reads differently (see ``loads``): found
# as a run of "0" once every digit is mapped to "0" (a translate is far cheaper than a regex)
DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
LONG_NUMBER = b"0" * 19


def loads(value: bytes | None) -> Any:
    """``json.loads``, through orjson (several times faster) where its answer is the same.
    orjson refuses some of what json reads beyond the JSON grammar (NaN, a BOM, UTF-16, lone
    surrogates): json reads those. It reads integers beyond 64 bits as floats, where json
    keeps them whole: a message with a run of 19 digits or more goes to json directly."""
    if isinstance(value, bytes) and LONG_NUMBER not in value.translate(DIGITS_AS_ZERO):
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError:
            pass  # json has the last word, and words the reason
    return json.loads(value)


def decode(
    message: Message, types: dict[str, CompiledType] | None = None
) -> tuple[dict[str, Any] | None, str]:
    """The envelope of a message, or None and the reason it cannot be used. ``types`` is the
    registry's table for the batch (``registry.current()``); without it the registry is asked."""
    try:
        document = loads(message.value())
    except (TypeError, ValueError, UnicodeDecodeError) as exc:
        return None, f"not JSON: {exc}"
    except RecursionError:
        return None, "not JSON that can be read: it nests objects or arrays too deeply"
    if not isinstance(document, dict):
        return None, "not an event envelope: the message is not a JSON object"
    if not (document.get("id") and document.get("source") and document.get("type")):
        missing = [name for name in ("id", "source", "type") if not document.get(name)]
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
    problems = event_validate(envelope, lookup=None if types is None else types.get)
    if problems:
        return None, "; ".join(f"{p['pointer']}: {p['detail']}" for p in problems)
    return envelope, ""


def mirror(documents: list[dict[str, Any] | RawBSONDocument]) -> None:
    """Insert the documents that are not stored yet (the unique index on ``event_id`` and
    ``source`` refuses the others): insert-if-absent at insert_many speed, several times faster
    than upserts.

    They are sent as encoded BSON (``BatchWork.decode`` encodes them, so that a document BSON
    cannot hold is set aside there): pymongo then neither adds ``_id`` to the caller's documents
    (which may be routed meanwhile, on another thread) nor makes one per document in Python;
    MongoDB gives each stored document its ``_id``, an ObjectId as ever."""
    events = mongo.get_db()[mongo.EVENTS]
    options = events.codec_options
    try:
        events.insert_many(
            [
                d
                if isinstance(d, RawBSONDocument)
                else RawBSONDocument(bson.encode(d, codec_options=options))
                for d in documents
            ],
            ordered=False,
        )
    except BulkWriteError as exc:
        others = [e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY]
        if others or exc.details.get("writeConcernErrors"):
            raise


def unmirror(keys: list[EventKey]) -> None:
    """Remove the documents of events that were set aside after a failed try mirrored them."""
    mongo.get_db()[mongo.EVENTS].delete_many(
        {"$or": [{"event_id": event_id, "source": source} for source, event_id in keys]}
    )


class Mirroring:
    """The MongoDB inserts of one batch, a chunk at a time, on ``pool``'s threads (inline
    without one). ``wait`` returns once every chunk is stored, or raises the first failure."""

    def __init__(self, pool: ThreadPoolExecutor | None) -> None:
        self._pool = pool
        self._futures: list[Future] = []

    def send(self, documents: list[dict[str, Any]]) -> None:
        if not documents:
            return
        if self._pool is None:
            mirror(documents)
        else:
            self._futures.append(self._pool.submit(mirror, documents))

    def wait(self) -> None:
        for future in self._futures:
            future.result()

    def settle(self) -> None:
        """Let chunks still in flight finish (after a failure, before the batch is replayed)."""
        futures_wait(self._futures)


DELIVERY_LOAD_COLUMNS = (
    "event_id",
    "event_source",
    "event_type",
    "subscription_id",
    "rule_id",
    "partition_key",
    "status",
)
_COLUMNS = ", ".join(DELIVERY_LOAD_COLUMNS)
LOAD_TABLE = """
    CREATE TEMP TABLE IF NOT EXISTS pipeline_delivery_load (
        event_id varchar(1024), event_source varchar(1024), event_type varchar(200),
        subscription_id bigint,
        rule_id bigint, partition_key varchar(255), status varchar(10)
    ) ON COMMIT DELETE ROWS;
    SET CONSTRAINTS ALL IMMEDIATE
"""
LOAD = f"COPY pipeline_delivery_load ({_COLUMNS}) FROM STDIN"
# moves what was loaded into the deliveries
MOVE = f"""
    WITH loaded AS (DELETE FROM pipeline_delivery_load RETURNING *)
    INSERT INTO {Delivery._meta.db_table} ({_COLUMNS}, attempts, attempts_before_replay,
        last_error, is_test, created_at, updated_at, next_attempt_at)
    SELECT {_COLUMNS}, 0, 0, '', false, now(), now(),
        CASE WHEN status = %s THEN now() + make_interval(secs => %s) END
    FROM loaded
    ON CONFLICT DO NOTHING
    RETURNING id, subscription_id, status
"""


class DeliveryWriter:
    """Insert-if-absent the deliveries of a batch, chunk by chunk, in the current transaction
    (use it inside ``transaction.atomic()``): each chunk is COPYed into a temporary table,
    then moved with one ``INSERT ... SELECT ... ON CONFLICT DO NOTHING`` (the unique key is
    event, subscription, rule). Several times faster than ``bulk_create`` for thousands of rows.

    The INSERT is sent without waiting for it (psycopg's pipeline mode): PostgreSQL inserts a
    chunk while the pipeline decodes and routes the next one, and the wait comes before the
    next COPY. Foreign keys are checked by each statement (``SET CONSTRAINTS ALL IMMEDIATE``)
    rather than all at commit, for the same reason.

    Once the ``with`` block is left, ``created`` lists (id, subscription id) of the new pending
    rows, to be queued after commit; rows a replayed batch finds already there were queued the
    first time (or the sweeper queues them when their lease, set here, lapses)."""

    def __init__(self) -> None:
        self.created: list[tuple[int, int]] = []
        self._pipeline: AbstractContextManager | None = None
        self._moves: list[psycopg.Cursor] = []

    def __enter__(self) -> DeliveryWriter:
        connection.ensure_connection()
        self._connection: psycopg.Connection = connection.connection
        with psycopg.ClientCursor(self._connection) as cursor:  # two statements, one trip
            cursor.execute(LOAD_TABLE)
        return self

    def send(self, deliveries: list[tuple]) -> None:
        """Rows in ``DELIVERY_LOAD_COLUMNS`` order."""
        if not deliveries:
            return
        self._wait()  # COPY needs the connection to itself
        with self._connection.cursor() as cursor, cursor.copy(LOAD) as copy:
            for row in deliveries:
                copy.write_row(row)
        self._pipeline = self._connection.pipeline()
        self._pipeline.__enter__()
        move = psycopg.Cursor(self._connection)
        move.execute(MOVE, [PENDING, settings.WEBHOOK_LEASE_SECONDS])
        self._moves.append(move)

    def __exit__(self, kind: type[BaseException] | None, *exc_info: Any) -> None:
        if kind is not None:
            # the transaction is being rolled back: leave the pipeline, and let the failure
            # being handled be the one reported
            with contextlib.suppress(psycopg.Error):
                self._wait()
            return
        self._wait()
        self.created = [
            (row[0], row[1]) for move in self._moves for row in move.fetchall() if row[2] == PENDING
        ]

    def _wait(self) -> None:
        """Wait for the statements sent (raising their errors)."""
        pipeline, self._pipeline = self._pipeline, None
        if pipeline is not None:
            pipeline.__exit__(None, None, None)


def coordinates(message: Message) -> tuple[str, int, int]:
    return message.topic(), message.partition(), message.offset()


class BatchWork:
    """What a batch gathers while its chunks are decoded and routed. ``refused`` names
    messages to quarantine whatever they hold (by ``coordinates``), with the reason."""

    def __init__(
        self, configuration: Configuration, refused: dict[tuple[str, int, int], str] | None = None
    ) -> None:
        self.configuration = configuration
        self.refused = refused or {}
        self.types = registry.current()
        self.received_at = datetime.now(tz=UTC)
        self.expiry: dict[int, datetime] = {}  # retention days -> expires_at, one per batch
        self.documents: list[dict[str, Any]] = []
        self.envelopes: dict[EventKey, dict[str, Any]] = {}
        self.encoded: list[RawBSONDocument] = []  # the last chunk's documents, as BSON
        self.unstored: list[EventKey] = []  # refused events to remove from MongoDB
        self.quarantine: list[tuple[Message, str]] = []
        self.deliveries = 0
        self.matches: list[RuleMatch] = []
        self.publishes: list[tuple[str, dict[str, Any]]] = []

    def decode(self, messages: list[Message]) -> list[dict[str, Any]]:
        """The MongoDB documents of the messages' events (``encoded`` holds them as BSON);
        the others are set aside, with the reason."""
        documents = []
        self.encoded = []
        options = mongo.get_db()[mongo.EVENTS].codec_options
        for message in messages:
            envelope, reason = decode(message, self.types)
            if envelope is None:
                self.quarantine.append((message, reason))
                continue
            refused = self.refused.get(coordinates(message)) if self.refused else None
            if refused is not None:
                self.quarantine.append((message, refused))
                # a failed try may have mirrored it: a quarantined event is not stored
                self.unstored.append(envelope_key(envelope))
                continue
            compiled = self.types.get(envelope["type"])
            retention = compiled.retention_days if compiled else settings.DEFAULT_RETENTION_DAYS
            expires_at = self.expiry.get(retention)
            if expires_at is None:
                expires_at = self.expiry[retention] = self.received_at + timedelta(days=retention)
            document = event_document(
                envelope,
                retention_days=retention,
                received_at=self.received_at,
                expires_at=expires_at,
            )
            try:
                encoded = RawBSONDocument(bson.encode(document, codec_options=options))
            except (bson.errors.InvalidDocument, OverflowError, ValueError) as exc:
                # what ingest refuses, written to the topic by another producer
                self.quarantine.append((message, f"MongoDB cannot store the event: {exc}"))
                continue
            documents.append(document)
            self.encoded.append(encoded)
            self.envelopes[document_key(document)] = envelope
        self.documents += documents
        return documents

    def route(self, documents: list[dict[str, Any]]) -> list[tuple]:
        """The deliveries of the documents, to subscriptions and by rules (whose matches and
        publications are gathered)."""
        match = self.configuration.routes.match
        deliveries = [
            _delivery(document, route.subscription_id, None, route.held)
            for document in documents
            for route in match(document)
        ]
        for firing in self.configuration.rules.evaluate(documents):
            deliveries += self._fire(firing)
        self.deliveries += len(deliveries)
        return deliveries

    def _fire(self, firing: Firing) -> list[tuple]:
        deliveries = []
        notification = ""
        for action in firing.rule.actions:
            kind = action.get("type")
            if kind == Rule.ActionType.DELIVER:
                subscription_id = action["subscription"]
                state = self.configuration.routes.states.get(subscription_id)
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
                self.publishes.append(
                    (action["topic"], self.envelopes[document_key(firing.document)])
                )
        self.matches.append(
            RuleMatch(
                rule=firing.rule,
                event_id=firing.document["event_id"],
                event_source=firing.document["source"],
                event_type=firing.document["type"],
                threshold_key=firing.key,
                notification=notification,
            )
        )
        return deliveries


CHUNK = 500  # messages decoded, mirrored and routed together; a batch writes several
# inserts in flight at once: each waits for MongoDB's journal (w: majority), and two chunks
# share that wait (the order of a batch's inserts does not matter: each is insert-if-absent)
MIRROR_THREADS = 2


def process_batch(
    messages: list[Message],
    configuration: Configuration,
    *,
    mirror_pool: ThreadPoolExecutor | None = None,
    refused: dict[tuple[str, int, int], str] | None = None,
) -> BatchResult:
    """Steps 1-4 for a batch of messages (offsets are the caller's), a chunk at a time. With
    ``mirror_pool``, the MongoDB inserts run on its threads while the batch goes on. Messages
    named in ``refused`` are quarantined with their reason."""
    configuration.refresh()
    work = BatchWork(configuration, refused)
    mirroring = Mirroring(mirror_pool)
    try:
        # deliveries and matches in one transaction; a replay conflicts and adds nothing
        with transaction.atomic():
            with DeliveryWriter() as writer:
                for start in range(0, len(messages), CHUNK):
                    documents = work.decode(messages[start : start + CHUNK])
                    # 1. mirror: one document per event; a replay leaves the first copy as it was
                    mirroring.send(work.encoded)
                    # 2. route and evaluate rules; 3. write the deliveries (PostgreSQL works on
                    # them while the next chunk is decoded)
                    writer.send(work.route(documents))
            RuleMatch.objects.bulk_create(work.matches, ignore_conflicts=True, batch_size=1000)
            if work.unstored:
                unmirror(work.unstored)
            # the mirror is complete before the deliveries commit: none shows before its event
            mirroring.wait()
            deliveries_enqueue_on_commit(writer.created)
    finally:
        mirroring.settle()

    # 4. rule publications and quarantine, acknowledged before offsets move
    publisher = kafka.get_publisher()
    futures = [
        publisher.publish(topic, encode(envelope), key=_key(envelope))
        for topic, envelope in work.publishes
    ]
    for message, reason in work.quarantine:
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

    result = BatchResult(
        events=len(work.documents),
        quarantined=len(work.quarantine),
        deliveries=work.deliveries,
        matches=len(work.matches),
        mirrored=[document_key(d) for d in work.documents],
    )
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
        document["source"],
        document["type"],
        subscription_id,
        rule.pk if rule is not None else None,
        (document.get("partition_key") or "")[:255],
        HELD if held else PENDING,
    )


OUTAGES: tuple[type[BaseException], ...] = (
    ConnectionError,  # also redis' ConnectionError and TimeoutError
    TimeoutError,
    FutureTimeout,
    pymongo_errors.ConnectionFailure,  # also AutoReconnect and server selection timeouts
    pymongo_errors.WriteConcernError,
    pymongo_errors.ExecutionTimeout,
    psycopg.OperationalError,  # also serialization failures and deadlocks
    psycopg.InterfaceError,
    db_errors.OperationalError,
    db_errors.InterfaceError,
    redis_errors.ConnectionError,
    redis_errors.TimeoutError,
    redis_errors.BusyLoadingError,
    KafkaException,
    kafka.PublishError,
    BufferError,
)


def is_outage(exc: BaseException) -> bool:
    """Whether a failure is a dependency's (retry the batch until it answers) rather than the
    content's (some message will never get through)."""
    if isinstance(exc, BulkWriteError):
        # refused documents are content; a write concern not met is the server's state
        return bool(exc.details.get("writeConcernErrors")) and not [
            e for e in exc.details.get("writeErrors", []) if e.get("code") != DUPLICATE_KEY
        ]
    if isinstance(exc, pymongo_errors.OperationFailure):
        # the server is not in a state to write (shutting down, stepping down, not primary)
        return exc.code in MONGO_TRANSIENT_CODES or bool(exc.has_error_label("RetryableWriteError"))
    return isinstance(exc, OUTAGES)


# NotWritablePrimary, InterruptedAtShutdown, InterruptedDueToReplStateChange,
# PrimarySteppedDown, ShutdownInProgress, HostUnreachable, HostNotFound, NetworkTimeout,
# ExceededTimeLimit, LockTimeout, WriteConcernFailed
MONGO_TRANSIENT_CODES = frozenset((10107, 11600, 11602, 189, 91, 6, 7, 89, 262, 24, 64))


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
        self.lag: LagWatch | None = None

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
        self.lag = LagWatch(self.consumer)
        mirror_pool = ThreadPoolExecutor(
            max_workers=MIRROR_THREADS, thread_name_prefix="pipeline-mirror"
        )
        processed = failures = 0
        idle_since = None
        try:
            while not self._stopping.is_set():
                messages = self.consumer.consume(self.batch_size, timeout=self.batch_timeout)
                usable = [m for m in messages if not self._is_error(m)]
                self.lag.observe(fetched=len(usable))
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
                    result = self._process(usable, mirror_pool)
                except Exception as exc:  # noqa: BLE001 - logged, with the trace unless an outage
                    # a dependency failed (MongoDB, PostgreSQL, Redis, the broker): nothing
                    # was committed, so rewind to the batch's start and try it again later
                    failures += 1
                    pause = min(30.0, 0.5 * 2**failures)
                    logger.error(
                        "batch failed (%s: %s); retrying it in %.1f s",
                        type(exc).__name__,
                        exc,
                        pause,
                        exc_info=not is_outage(exc),
                    )
                    self._rewind(usable)
                    self._stopping.wait(pause)
                    continue
                failures = 0
                self.consumer.commit(offsets=next_offsets(usable), asynchronous=False)
                processed += result.events + result.quarantined
                if max_events is not None and processed >= max_events:
                    break
        finally:
            self.lag.forget()
            self.consumer.close()
            mirror_pool.shutdown()
        return processed

    def _process(self, messages: list[Message], pool: ThreadPoolExecutor) -> BatchResult:
        """One batch; a failure that is not an outage is retried once (a subscription may have
        been deleted meanwhile), then the messages are taken one at a time, so that whatever
        no retry will ever get through is quarantined and the others go on."""
        try:
            return process_batch(messages, self.configuration, mirror_pool=pool)
        except Exception as exc:
            if is_outage(exc):
                raise
            first = exc
        try:
            return process_batch(messages, self.configuration, mirror_pool=pool)
        except Exception as exc:
            if is_outage(exc):
                raise
        logger.warning(
            "a batch of %d message(s) failed twice (%s: %s): finding the messages that fail",
            len(messages),
            type(first).__name__,
            first,
        )
        total = BatchResult()
        for message in messages:
            result = self._process_alone(message, pool)
            total.events += result.events
            total.quarantined += result.quarantined
            total.deliveries += result.deliveries
            total.matches += result.matches
            total.mirrored += result.mirrored
        return total

    def _process_alone(self, message: Message, pool: ThreadPoolExecutor) -> BatchResult:
        failure: Exception | None = None
        for _ in range(2):
            try:
                return process_batch([message], self.configuration, mirror_pool=pool)
            except Exception as exc:
                if is_outage(exc):
                    raise
                failure = exc
        reason = f"the pipeline cannot process it: {type(failure).__name__}: {failure}"
        refused = {coordinates(message): reason}
        return process_batch([message], self.configuration, mirror_pool=pool, refused=refused)

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
