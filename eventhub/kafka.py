"""The Kafka clients of the process, configured from settings and created lazily.

Only the Kafka protocol is spoken (through confluent-kafka), so the local Tansu broker and
Apache Kafka run the same code path.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException, Message, Producer
from confluent_kafka.admin import AdminClient, NewTopic
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


def configured_topics() -> list[TopicSpec]:
    """The topics EventHub uses, with their partition counts from settings."""
    return [
        TopicSpec(settings.KAFKA_TOPIC_EVENTS, settings.KAFKA_PARTITIONS),
        TopicSpec(settings.KAFKA_TOPIC_DLQ, settings.KAFKA_DLQ_PARTITIONS),
        TopicSpec(settings.KAFKA_TOPIC_QUARANTINE, settings.KAFKA_DLQ_PARTITIONS),
    ]


def ensure_topics(specs: list[TopicSpec], *, timeout: float = 10.0) -> dict[str, str]:
    """Create the topics that do not exist yet; return ``{name: "created" | "exists"}``.

    Existing topics are left as they are: a partition count that differs from settings is
    reported by the caller, never changed here (the local broker cannot add partitions).
    """
    admin = get_admin()
    existing = admin.list_topics(timeout=timeout).topics
    result = {spec.name: "exists" for spec in specs if spec.name in existing}
    missing = [
        NewTopic(
            spec.name,
            num_partitions=spec.partitions,
            replication_factor=settings.KAFKA_REPLICATION_FACTOR,
        )
        for spec in specs
        if spec.name not in existing
    ]
    if missing:
        for name, future in admin.create_topics(missing, operation_timeout=timeout).items():
            try:
                future.result(timeout=timeout)
                result[name] = "created"
            except KafkaException as exc:
                # Another process may have created it between our listing and our request.
                if exc.args and exc.args[0].name() == "TOPIC_ALREADY_EXISTS":
                    result[name] = "exists"
                else:
                    raise
    return result


def partition_counts(names: list[str], *, timeout: float = 10.0) -> dict[str, int]:
    topics = get_admin().list_topics(timeout=timeout).topics
    return {name: len(topics[name].partitions) for name in names if name in topics}
