"""The Kafka clients of the process, configured from settings and created lazily.

Only the Kafka protocol is spoken (through confluent-kafka): the local Apache Kafka that
scripts/services.py starts and a production cluster run the same code path.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from confluent_kafka import (
    ConsumerGroupTopicPartitions,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import (
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    NewPartitions,
    NewTopic,
    OffsetSpec,
)
from django.conf import settings

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_admin: AdminClient | None = None
_publisher: Publisher | None = None


def base_config() -> dict[str, str]:
    return {"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS}


def get_admin() -> AdminClient:
    """The process's admin client (cheap to keep, expensive to create per call)."""
    global _admin
    with _lock:
        if _admin is None:
            _admin = AdminClient(base_config())
        return _admin


class PublishError(Exception):
    """The broker did not take the message (unreachable, timed out, queue full)."""


Headers = list[tuple[str, bytes]]
FailureHook = Callable[[str, bytes, bytes | None, Headers, str], None]


class Publisher:
    """The process's idempotent producer (acks=all) with a thread serving delivery reports.

    ``publish`` returns a future that resolves to ``(partition, offset)`` once the broker has
    acknowledged the message, or fails with ``PublishError``. Callers that answer before the
    acknowledgement pass ``on_failure`` so a message the broker never took is not lost.
    """

    def __init__(self, config: dict[str, object]):
        self._producer = Producer(config)
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="kafka-publisher", daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._closed.is_set():
            self._producer.poll(0.05)

    def publish(
        self,
        topic: str,
        value: bytes,
        *,
        key: bytes | None = None,
        headers: Headers | None = None,
        on_failure: FailureHook | None = None,
    ) -> Future:
        future: Future = Future()

        def report(error: KafkaError | None, message: Message) -> None:
            if error is None:
                future.set_result((message.partition(), message.offset()))
                return
            future.set_exception(PublishError(error.str()))
            if on_failure is not None:
                try:
                    on_failure(topic, value, key, headers or [], error.str())
                except Exception:
                    logger.exception("could not keep a message the broker refused")

        try:
            self._producer.produce(topic, value=value, key=key, headers=headers, on_delivery=report)
        except BufferError as exc:
            raise PublishError("the producer's queue is full") from exc
        except KafkaException as exc:
            raise PublishError(str(exc)) from exc
        return future

    def flush(self, timeout: float = 10.0) -> int:
        """Wait for outstanding messages; return how many are still queued."""
        return self._producer.flush(timeout)

    def close(self, timeout: float = 10.0) -> None:
        self.flush(timeout)
        self._closed.set()
        self._thread.join(timeout=1)


def producer_config() -> dict[str, object]:
    return {
        **base_config(),
        "enable.idempotence": True,
        "acks": "all",
        "linger.ms": settings.KAFKA_LINGER_MS,
        "compression.type": "lz4",
        "message.timeout.ms": settings.KAFKA_MESSAGE_TIMEOUT_MS,
        "socket.timeout.ms": min(settings.KAFKA_MESSAGE_TIMEOUT_MS, 10000),
        "queue.buffering.max.messages": 200000,
    }


def get_publisher() -> Publisher:
    global _publisher
    with _lock:
        if _publisher is None:
            _publisher = Publisher(producer_config())
        return _publisher


def reset_clients() -> None:
    """Forget cached clients (after a settings change in tests, or in a forked child)."""
    global _admin, _publisher
    with _lock:
        _admin = None
        publisher, _publisher = _publisher, None
    if publisher is not None and os.getpid() == _owner_pid:
        publisher.close(timeout=1)


_owner_pid = os.getpid()


def _after_fork() -> None:
    # A forked child must not use its parent's librdkafka handles or threads.
    global _admin, _publisher, _owner_pid
    _admin, _publisher, _owner_pid = None, None, os.getpid()


os.register_at_fork(after_in_child=_after_fork)


@dataclass(frozen=True)
class TopicSpec:
    name: str
    partitions: int
    # None: the broker's default (log.retention.hours)
    retention_ms: int | None = None


HOUR_MS = 3_600_000


def configured_topics() -> list[TopicSpec]:
    """The topics EventHub uses, with their partition counts and retention from settings."""
    events_retention = settings.KAFKA_RETENTION_HOURS * HOUR_MS
    return [
        TopicSpec(settings.KAFKA_TOPIC_EVENTS, settings.KAFKA_PARTITIONS, events_retention),
        TopicSpec(
            settings.KAFKA_TOPIC_DLQ,
            settings.KAFKA_DLQ_PARTITIONS,
            settings.KAFKA_DLQ_RETENTION_HOURS * HOUR_MS,
        ),
        TopicSpec(settings.KAFKA_TOPIC_QUARANTINE, settings.KAFKA_DLQ_PARTITIONS, events_retention),
    ]


def _raise_unless(future: Future, timeout: float, *tolerated: str) -> bool:
    """Wait for an admin operation; False when it failed with one of the ``tolerated`` codes
    (another process did it first), raise ``KafkaException`` for anything else."""
    try:
        future.result(timeout=timeout)
    except KafkaException as exc:
        if exc.args and exc.args[0].name() in tolerated:
            return False
        raise
    return True


def ensure_topics(specs: list[TopicSpec], *, timeout: float = 10.0) -> dict[str, str]:
    """Bring the topics to what ``specs`` say; return ``{name: what was done}``.

    Missing topics are created with their partitions and retention. An existing topic with
    fewer partitions than asked gets more (Kafka can add partitions, never remove them: note
    that adding them moves keys to other partitions, so per-key order holds only for events
    published afterwards); one with more is reported by the caller. A retention that differs
    from the spec is set to it.
    """
    admin = get_admin()
    existing = admin.list_topics(timeout=timeout).topics
    result: dict[str, str] = {}
    missing = []
    for spec in specs:
        if spec.name not in existing:
            config = {} if spec.retention_ms is None else {"retention.ms": str(spec.retention_ms)}
            missing.append(
                NewTopic(
                    spec.name,
                    num_partitions=spec.partitions,
                    replication_factor=settings.KAFKA_REPLICATION_FACTOR,
                    config=config,
                )
            )
            continue
        result[spec.name] = "exists"
        if len(existing[spec.name].partitions) < spec.partitions:
            grow = admin.create_partitions(
                [NewPartitions(spec.name, spec.partitions)], operation_timeout=timeout
            )
            _raise_unless(grow[spec.name], timeout, "INVALID_PARTITIONS")
            result[spec.name] = f"grown to {spec.partitions} partitions"
    if missing:
        for name, future in admin.create_topics(missing, operation_timeout=timeout).items():
            created = _raise_unless(future, timeout, "TOPIC_ALREADY_EXISTS")
            result[name] = "created" if created else "exists"
    _align_retention([s for s in specs if result[s.name] != "created"], timeout=timeout)
    return result


def _align_retention(specs: list[TopicSpec], *, timeout: float) -> None:
    specs = [spec for spec in specs if spec.retention_ms is not None]
    if not specs:
        return
    admin = get_admin()
    resources = [ConfigResource(ConfigResource.Type.TOPIC, spec.name) for spec in specs]
    current = {
        resource.name: future.result(timeout=timeout)
        for resource, future in admin.describe_configs(resources).items()
    }
    changes = []
    for spec in specs:
        entry = current[spec.name].get("retention.ms")
        if entry is None or entry.value != str(spec.retention_ms):
            change = ConfigResource(ConfigResource.Type.TOPIC, spec.name)
            change.add_incremental_config(
                ConfigEntry(
                    "retention.ms",
                    str(spec.retention_ms),
                    incremental_operation=AlterConfigOpType.SET,
                )
            )
            changes.append(change)
    if changes:
        for future in admin.incremental_alter_configs(changes).values():
            future.result(timeout=timeout)


def topic_retention_ms(name: str, *, timeout: float = 10.0) -> int:
    resource = ConfigResource(ConfigResource.Type.TOPIC, name)
    config = get_admin().describe_configs([resource])[resource].result(timeout=timeout)
    return int(config["retention.ms"].value)


def partition_counts(names: list[str], *, timeout: float = 10.0) -> dict[str, int]:
    topics = get_admin().list_topics(timeout=timeout).topics
    return {name: len(topics[name].partitions) for name in names if name in topics}


@dataclass(frozen=True)
class PartitionOffsets:
    """Where a consumer group stands on one partition, as the broker reports it now:
    ``committed`` is -1 when the group has committed nothing there."""

    partition: int
    low: int
    high: int
    committed: int

    @property
    def lag(self) -> int:
        """Messages past the group's committed offset (all of them when nothing is
        committed: reading starts at the low watermark)."""
        start = self.committed if self.committed >= 0 else self.low
        return max(0, self.high - start)


def group_offsets(group: str, topic: str, *, timeout: float = 5.0) -> list[PartitionOffsets]:
    """The group's committed offset and the watermarks of each partition of ``topic``, from
    the admin API (no consumer joins the group). Raises ``KafkaException`` when the broker
    does not answer or the topic does not exist."""
    admin = get_admin()
    metadata = admin.list_topics(topic, timeout=timeout).topics.get(topic)
    if metadata is None or metadata.error is not None:
        reason = metadata.error if metadata is not None else "unknown topic"
        raise KafkaException(KafkaError(KafkaError.UNKNOWN_TOPIC_OR_PART, str(reason)))
    partitions = [TopicPartition(topic, p) for p in sorted(metadata.partitions)]
    request = [ConsumerGroupTopicPartitions(group, partitions)]
    committed_future = admin.list_consumer_group_offsets(request, request_timeout=timeout)[group]
    latest = admin.list_offsets(
        {tp: OffsetSpec.latest() for tp in partitions}, request_timeout=timeout
    )
    earliest = admin.list_offsets(
        {tp: OffsetSpec.earliest() for tp in partitions}, request_timeout=timeout
    )
    committed = {
        tp.partition: tp.offset
        for tp in committed_future.result(timeout=timeout).topic_partitions
        if tp.error is None
    }
    highs = {tp.partition: f.result(timeout=timeout).offset for tp, f in latest.items()}
    lows = {tp.partition: f.result(timeout=timeout).offset for tp, f in earliest.items()}
    return [
        PartitionOffsets(
            partition=tp.partition,
            low=lows[tp.partition],
            high=highs[tp.partition],
            committed=max(-1, committed.get(tp.partition, -1)),
        )
        for tp in partitions
    ]
