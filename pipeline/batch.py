"""One batch of the pipeline, a chunk at a time: decode, mirror, route, evaluate rules, write
deliveries and rule matches in one transaction, then publish rule actions and quarantine."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
from bson.raw_bson import RawBSONDocument
from confluent_kafka import Message
from django.conf import settings
from django.db import transaction
from opentelemetry.trace import Link, Span, SpanKind, Status, StatusCode
from prometheus_client import Counter

from analytics.rollups import rollups_count_batch, stored_from
from core import kafka, mongo, tracing
from core.correlation import given_request_id, request_context
from core.documents import event_document
from core.identity import EventKey, document_key, envelope_key
from events.envelope import partition_key
from events.registry import registry
from events.services import encode
from pipeline.decoding import coordinates, decode, quarantine_headers
from pipeline.mirroring import Mirroring, unmirror
from rules.engine import Firing, RuleSet, rule_set_load, rules_stamp
from rules.models import Rule, RuleMatch
from subscriptions.models import Subscription
from subscriptions.routing import RoutingTable, routing_stamp, routing_table_load
from webhooks.bulk import DeliveryWriter, delivery_row
from webhooks.services.queueing import deliveries_enqueue_on_commit

logger = logging.getLogger(__name__)


EVENTS_PROCESSED = Counter("events_processed_total", "Events mirrored and routed by the pipeline")
EVENTS_QUARANTINED = Counter("pipeline_quarantined_total", "Messages sent to quarantine")
DELIVERIES_CREATED = Counter("pipeline_deliveries_total", "Delivery rows written (new or not)")


@dataclass
class BatchResult:
    events: int = 0
    quarantined: int = 0
    deliveries: int = 0
    matches: int = 0
    mirrored: list[EventKey] = field(default_factory=list)


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


class BatchWork:
    """What a batch gathers while its chunks are decoded and routed. ``refused`` names
    messages to quarantine whatever they hold (by ``coordinates``), with the reason."""

    def __init__(
        self,
        configuration: Configuration,
        refused: dict[tuple[str, int, int], str] | None = None,
        batch_span: Span | None = None,
    ) -> None:
        self.configuration = configuration
        self.refused = refused or {}
        # tracing on: each event's consume span (a child of its producer's), whose context
        # its deliveries keep as their traceparent
        self.batch_span = batch_span
        self.spans: list[Span] = []
        self.traceparents: dict[EventKey, str] = {}
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
            # the message that stores it: how the rollups tell a retry from a duplicate
            document["stored_from"] = stored_from(
                message.topic(), message.partition(), message.offset()
            )
            try:
                encoded = RawBSONDocument(bson.encode(document, codec_options=options))
            except (bson.errors.InvalidDocument, OverflowError, ValueError) as exc:
                # what ingest refuses, written to the topic by another producer
                self.quarantine.append((message, f"MongoDB cannot store the event: {exc}"))
                continue
            documents.append(document)
            self.encoded.append(encoded)
            key = document_key(document)
            self.envelopes[key] = envelope
            if self.batch_span is not None:
                self.traceparents[key] = self._consume_span(message, envelope)
        self.documents += documents
        return documents

    def _consume_span(self, message: Message, envelope: dict[str, Any]) -> str:
        span = tracing.tracer.start_span(
            "consume",
            context=tracing.context_from_headers(message.headers()),
            kind=SpanKind.CONSUMER,
            links=[Link(self.batch_span.get_span_context())],
            attributes={
                "messaging.system": "kafka",
                "messaging.operation.type": "process",
                "messaging.destination.name": message.topic(),
                "messaging.destination.partition.id": str(message.partition()),
                "messaging.kafka.offset": message.offset(),
                "cloudevents.event_id": envelope["id"],
                "eventhub.event.type": envelope["type"],
            },
        )
        self.spans.append(span)
        return tracing.traceparent_of(span)

    def end_spans(self, failure: BaseException | None) -> None:
        for span in self.spans:
            if failure is not None:
                span.set_status(Status(StatusCode.ERROR, f"{type(failure).__name__}"))
            span.end()

    def route(self, documents: list[dict[str, Any]]) -> list[tuple]:
        """The deliveries of the documents, to subscriptions and by rules (whose matches and
        publications are gathered)."""
        match = self.configuration.routes.match
        traceparents = self.traceparents
        with tracing.tracer.start_as_current_span(
            "route", attributes={"eventhub.events": len(documents)}
        ) as span:
            deliveries = [
                delivery_row(
                    document,
                    route.subscription_id,
                    None,
                    route.held,
                    traceparents.get(document_key(document), "") if traceparents else "",
                )
                for document in documents
                for route in match(document)
            ]
            for firing in self.configuration.rules.evaluate(documents):
                deliveries += self._fire(firing)
            span.set_attribute("eventhub.deliveries", len(deliveries))
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
                    delivery_row(
                        firing.document,
                        subscription_id,
                        firing.rule,
                        state != Subscription.State.ACTIVE,
                        self.traceparents.get(document_key(firing.document), ""),
                    )
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
    if not tracing.enabled():
        return _process_batch(messages, configuration, mirror_pool, refused, None)
    with tracing.tracer.start_as_current_span(
        "process_batch", attributes={"eventhub.messages": len(messages)}
    ) as span:
        return _process_batch(messages, configuration, mirror_pool, refused, span)


def _process_batch(
    messages: list[Message],
    configuration: Configuration,
    mirror_pool: ThreadPoolExecutor | None,
    refused: dict[tuple[str, int, int], str] | None,
    batch_span: Span | None,
) -> BatchResult:
    configuration.refresh()
    work = BatchWork(configuration, refused, batch_span)
    try:
        result = _run(messages, work, mirror_pool)
    except BaseException as exc:
        work.end_spans(exc)
        raise
    work.end_spans(None)
    return result


def _run(
    messages: list[Message], work: BatchWork, mirror_pool: ThreadPoolExecutor | None
) -> BatchResult:
    mirroring = Mirroring(mirror_pool)
    try:
        # deliveries and matches in one transaction; a replay conflicts and adds nothing
        with transaction.atomic():
            with DeliveryWriter() as writer:
                for start in range(0, len(messages), CHUNK):
                    documents = work.decode(messages[start : start + CHUNK])
                    # 1. mirror: one document per event; a replay leaves the first copy as it was
                    mirroring.send(work.encoded, documents)
                    # 2. route and evaluate rules; 3. write the deliveries (PostgreSQL works on
                    # them while the next chunk is decoded)
                    writer.send(work.route(documents))
            RuleMatch.objects.bulk_create(work.matches, ignore_conflicts=True, batch_size=1000)
            if work.unstored:
                unmirror(work.unstored)
            # the mirror is complete before the deliveries commit: none shows before its event
            mirroring.wait()
            # 5. the new events join the rollups, once each (a replay finds them counted)
            rollups_count_batch(work.documents, mirroring.duplicates)
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
        # the line carries the request id of the request that published the message
        with request_context(given_request_id(dict(message.headers() or ()).get("x-request-id"))):
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
    EVENTS_PROCESSED.inc(result.events)
    EVENTS_QUARANTINED.inc(result.quarantined)
    DELIVERIES_CREATED.inc(result.deliveries)
    return result


def _key(envelope: dict[str, Any]) -> bytes | None:
    key = partition_key(envelope)
    return key.encode() if key else None
