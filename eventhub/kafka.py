"""The Kafka clients of the process, configured from settings and created lazily.

Only the Kafka protocol is spoken (through confluent-kafka), so the local Tansu broker and
Apache Kafka run the same code path.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, NewTopic
from django.conf import settings

_lock = threading.Lock()
_admin: AdminClient | None = None


def base_config() -> dict[str, str]:
    return {"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS}


def get_admin() -> AdminClient:
    """The process's admin client (cheap to keep, expensive to create per call)."""
    global _admin
    with _lock:
        if _admin is None:
            _admin = AdminClient(base_config())
        return _admin


def reset_clients() -> None:
    """Forget cached clients (after a settings change in tests, or a fork)."""
    global _admin
    with _lock:
        _admin = None


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
