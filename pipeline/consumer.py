"""The consume loop: batches from Kafka through ``process_batch``, offsets committed after, a
failing dependency waited out, a message that always fails set aside."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from confluent_kafka import Consumer, KafkaError, KafkaException, Message, TopicPartition
from django.conf import settings
from django.db import close_old_connections

from core import kafka
from pipeline.batch import MIRROR_THREADS, BatchResult, Configuration, process_batch
from pipeline.decoding import coordinates
from pipeline.lag import LagWatch
from pipeline.outages import is_outage
from pipeline.stats import PipelineStats

logger = logging.getLogger(__name__)


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
        self.stats = PipelineStats()

    def stop(self) -> None:
        self._stopping.set()

    @property
    def stopping(self) -> threading.Event:
        """Set once ``stop()`` was called."""
        return self._stopping

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
        self.consumer = self._new_consumer()
        self.consumer.subscribe(
            [settings.KAFKA_TOPIC_EVENTS], on_assign=self._on_assign, on_revoke=self._on_revoke
        )
        self.lag = LagWatch(self.consumer, stats=self.stats)
        mirror_pool = ThreadPoolExecutor(
            max_workers=MIRROR_THREADS, thread_name_prefix="pipeline-mirror"
        )
        processed = failures = 0
        idle_since = None
        try:
            while not self._stopping.is_set():
                messages = self._next_batch()
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
                started = time.perf_counter()
                try:
                    result = self._process(usable, mirror_pool)
                except Exception as exc:  # noqa: BLE001 - logged, with the trace unless an outage
                    # a dependency failed (MongoDB, PostgreSQL, Redis, the broker): nothing
                    # was committed, so rewind to the batch's start and try it again later
                    self.stats.failure(exc)
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
                self._commit(usable)
                self.stats.batch(
                    events=result.events,
                    quarantined=result.quarantined,
                    deliveries=result.deliveries,
                    seconds=time.perf_counter() - started,
                )
                processed += result.events + result.quarantined
                if max_events is not None and processed >= max_events:
                    break
        finally:
            self.lag.forget()
            self.consumer.close()
            mirror_pool.shutdown()
        return processed

    def _new_consumer(self) -> Consumer:
        return Consumer(consumer_config())

    def _next_batch(self) -> list[Message]:
        """Wait up to the batch timeout for a message, then take what else has arrived (up to
        the batch size) without waiting for more: a batch is as large as the backlog, and an
        event that comes alone is processed at once."""
        messages = self.consumer.consume(1, timeout=self.batch_timeout)
        if messages and self.batch_size > 1:
            messages += self.consumer.consume(self.batch_size - 1, timeout=0)
        return messages

    def _process(self, messages: list[Message], pool: ThreadPoolExecutor) -> BatchResult:
        """One batch; a failure that is not an outage is retried once (a subscription may have
        been deleted meanwhile), then the messages are taken one at a time, so that whatever
        no retry will ever get through is quarantined and the others go on."""
        result, failure = self._try_twice(messages, pool)
        if result is not None:
            return result
        logger.warning(
            "a batch of %d message(s) failed twice (%s: %s): finding the messages that fail",
            len(messages),
            type(failure).__name__,
            failure,
        )
        total = BatchResult()
        for message in messages:
            result, failure = self._try_twice([message], pool)
            if result is None:
                reason = f"the pipeline cannot process it: {type(failure).__name__}: {failure}"
                refused = {coordinates(message): reason}
                result = process_batch(
                    [message], self.configuration, mirror_pool=pool, refused=refused
                )
            total.events += result.events
            total.quarantined += result.quarantined
            total.deliveries += result.deliveries
            total.matches += result.matches
            total.mirrored += result.mirrored
        return total

    def _try_twice(
        self, messages: list[Message], pool: ThreadPoolExecutor
    ) -> tuple[BatchResult | None, Exception | None]:
        """``process_batch`` up to twice: its result, or the second failure. An outage is
        raised at once, for the consume loop to wait out."""
        failure: Exception | None = None
        for _ in range(2):
            try:
                return process_batch(messages, self.configuration, mirror_pool=pool), None
            except Exception as exc:
                if is_outage(exc):
                    raise
                failure = exc
        return None, failure

    def _commit(self, messages: list[Message]) -> None:
        """Commit the offsets after ``messages``. A commit the broker refuses (unreachable,
        or the partitions moved to another member in a rebalance) does not stop the loop: the
        batch's effects are idempotent, so whoever holds the partitions next reads it again
        and adds nothing, and a later commit of ours covers it when they are still ours."""
        try:
            self.consumer.commit(offsets=next_offsets(messages), asynchronous=False)
        except KafkaException as exc:
            logger.warning("could not commit the batch's offsets (%s); consuming on", exc)

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
