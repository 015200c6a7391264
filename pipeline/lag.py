"""The pipeline's consumer lag, from the broker's watermarks, and the stall it may reveal.

Every ``PIPELINE_LAG_CHECK_SECONDS`` the consumer compares its position on each assigned
partition with the partition's high watermark, as the broker reports it now (not librdkafka's
cached figure): ``kafka_consumer_lag{topic,partition}`` and their sum ``queue_lag`` on the
pipeline worker's metrics. A consumer that is behind and yet has fetched nothing for
``PIPELINE_STALL_SECONDS`` is stalled: it says so in an error log line, in the
``pipeline_stalled`` gauge and in the status it reports to Redis (with its ``pipeline.stats``
figures), which ``GET /health/pipeline`` and ``GET /api/v1/pipeline/stats`` read. Fetches that
return nothing while the broker holds messages past the position were how the old local broker
lost events silently; whatever the cause next time, it is seen.

``pipeline_lag`` answers ``GET /api/v1/pipeline/lag`` from the Kafka admin API instead: the
group's committed offsets against the partitions' watermarks, whether a consumer runs or not.
Either figure is only as good as the broker's high watermark (the old local broker, Tansu,
reported a wrong one; Apache Kafka's counts every offset, transaction markers included).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import cache
from typing import Any

from confluent_kafka import OFFSET_INVALID, Consumer, KafkaException
from django.conf import settings
from prometheus_client import Gauge

from core import kafka
from core.redis import get_redis
from pipeline.stats import PipelineStats

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class LagGauges:
    partition: Gauge
    total: Gauge
    stalled: Gauge


@cache
def gauges() -> LagGauges:
    """The consumer's gauges, made by the first consumer of the process: processes that only
    read the reports (the web) export none of them."""
    return LagGauges(
        partition=Gauge(
            "kafka_consumer_lag",
            "Messages between the pipeline's position and the partition's high watermark",
            ["topic", "partition"],
        ),
        total=Gauge("queue_lag", "Messages the pipeline consumer is behind, all partitions"),
        stalled=Gauge(
            "pipeline_stalled",
            "1 while the consumer is behind and has fetched nothing for a while",
        ),
    )


STATUS_KEY = "eventhub:pipeline:status:{group}:{member}"


@dataclass
class LagReport:
    """What one consumer reports: its lag per partition and whether it is stalled."""

    member: str
    lag: int
    partitions: dict[str, int] = field(default_factory=dict)
    stalled: bool = False
    idle_seconds: float = 0.0
    checked_at: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)


class LagWatch:
    """Called by the consume loop after every poll; checks the lag now and then."""

    def __init__(
        self,
        consumer: Consumer,
        *,
        interval: float | None = None,
        stall_after: float | None = None,
        stats: PipelineStats | None = None,
    ) -> None:
        self.consumer = consumer
        self.stats = stats
        self.gauges = gauges()
        self.interval = settings.PIPELINE_LAG_CHECK_SECONDS if interval is None else interval
        self.stall_after = settings.PIPELINE_STALL_SECONDS if stall_after is None else stall_after
        self.member = f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.last_progress = time.monotonic()
        self.checked_at = 0.0
        self._logged_stall_at = 0.0
        self._stalled = False

    def observe(self, *, fetched: int) -> LagReport | None:
        """Note a poll that returned ``fetched`` messages; check the lag when it is time."""
        now = time.monotonic()
        if fetched:
            self.last_progress = now
        if now - self.checked_at < self.interval:
            return None
        self.checked_at = now
        try:
            report = self.check(now)
        except KafkaException as exc:
            logger.warning("could not read the partitions' watermarks: %s", exc)
            return None
        self._publish(report)
        return report

    def check(self, now: float | None = None) -> LagReport:
        now = time.monotonic() if now is None else now
        assignment = self.consumer.assignment()
        partitions: dict[str, int] = {}
        if assignment:
            positions = self.consumer.position(assignment)
            unknown = [tp for tp in positions if tp.offset == OFFSET_INVALID]
            committed = {
                (tp.topic, tp.partition): tp.offset
                for tp in (self.consumer.committed(unknown, timeout=5) if unknown else [])
            }
            for tp in positions:
                low, high = self.consumer.get_watermark_offsets(tp, timeout=5, cached=False)
                position = tp.offset
                if position == OFFSET_INVALID:
                    position = committed.get((tp.topic, tp.partition), OFFSET_INVALID)
                if position < 0:  # nothing fetched nor committed: reading starts at the low mark
                    position = low
                behind = max(0, high - position)
                partitions[f"{tp.topic}[{tp.partition}]"] = behind
                self.gauges.partition.labels(tp.topic, str(tp.partition)).set(behind)
        lag = sum(partitions.values())
        self.gauges.total.set(lag)
        idle = now - self.last_progress
        report = LagReport(
            member=self.member,
            lag=lag,
            partitions=partitions,
            stalled=lag > 0 and idle >= self.stall_after,
            idle_seconds=round(idle, 1),
            checked_at=time.time(),
            stats=self.stats.snapshot() if self.stats is not None else {},
        )
        self._say(report, now)
        return report

    def _say(self, report: LagReport, now: float) -> None:
        was_stalled, self._stalled = self._stalled, report.stalled
        self.gauges.stalled.set(1 if report.stalled else 0)
        if report.stalled and (not was_stalled or now - self._logged_stall_at >= 60):
            self._logged_stall_at = now
            behind = {name: n for name, n in report.partitions.items() if n}
            logger.error(
                "pipeline stalled: %d message(s) behind the broker's high watermark and "
                "nothing fetched for %.0f s (behind per partition: %s)",
                report.lag,
                report.idle_seconds,
                behind,
            )
        elif was_stalled and not report.stalled:
            logger.warning("pipeline moving again: %d message(s) behind", report.lag)

    def _publish(self, report: LagReport) -> None:
        key = STATUS_KEY.format(group=settings.PIPELINE_GROUP_ID, member=report.member)
        ttl = max(10, int(self.interval * 3))
        try:
            get_redis().set(key, json.dumps(asdict(report)), ex=ttl)
        except Exception as exc:  # noqa: BLE001 - the status is best effort; consuming goes on
            logger.debug("could not report the pipeline's status: %s", exc)

    def forget(self) -> None:
        """Remove this consumer's status (on a clean exit)."""
        self.gauges.stalled.set(0)
        key = STATUS_KEY.format(group=settings.PIPELINE_GROUP_ID, member=self.member)
        try:
            get_redis().delete(key)
        except Exception:  # noqa: BLE001 - it expires by itself
            pass


def consumer_reports() -> list[dict[str, Any]]:
    """The last report of each live consumer of the group (from Redis)."""
    pattern = STATUS_KEY.format(group=settings.PIPELINE_GROUP_ID, member="*")
    client = get_redis()
    keys = list(client.scan_iter(pattern))
    return [json.loads(value) for value in client.mget(keys) if value] if keys else []


def pipeline_status() -> dict[str, Any]:
    """The reports of the group's live consumers, for ``/health/pipeline``. Raises
    ``RuntimeError`` when a consumer is stalled or none reports."""
    reports = consumer_reports()
    if not reports:
        raise RuntimeError(
            f"no pipeline consumer of group {settings.PIPELINE_GROUP_ID!r} has reported "
            "its lag lately: is the pipeline running?"
        )
    stalled = [r for r in reports if r["stalled"]]
    if stalled:
        worst = max(stalled, key=lambda r: r["lag"])
        raise RuntimeError(
            f"{len(stalled)} consumer(s) stalled: {worst['lag']} message(s) behind and "
            f"nothing fetched for {worst['idle_seconds']:.0f} s ({worst['member']})"
        )
    return {"lag": sum(r["lag"] for r in reports), "consumers": len(reports)}


def _consumer(report: dict[str, Any]) -> dict[str, Any]:
    return {
        "member": report["member"],
        "lag": report["lag"],
        "stalled": report["stalled"],
        "idle_seconds": report["idle_seconds"],
        "checked_at": datetime.fromtimestamp(report["checked_at"], tz=UTC).isoformat(),
    }


def pipeline_lag() -> dict[str, Any]:
    """The pipeline group's lag per partition of the events topic, from the Kafka admin API
    (committed offsets against the watermarks), and what each live consumer reported."""
    topic, group = settings.KAFKA_TOPIC_EVENTS, settings.PIPELINE_GROUP_ID
    partitions = kafka.group_offsets(group, topic, timeout=settings.HEALTH_CHECK_TIMEOUT * 2)
    consumers = [_consumer(r) for r in consumer_reports()]
    return {
        "group": group,
        "topic": topic,
        "lag": sum(p.lag for p in partitions),
        "partitions": [
            {
                "partition": p.partition,
                "committed": p.committed,
                "low_watermark": p.low,
                "high_watermark": p.high,
                "lag": p.lag,
            }
            for p in partitions
        ],
        "consumers": consumers,
        "stalled": any(c["stalled"] for c in consumers),
        "checked_at": datetime.now(tz=UTC).isoformat(),
    }


def pipeline_stats() -> dict[str, Any]:
    """Throughput, batch time, the last batch and errors: each live consumer's figures and
    their sum (``batch_ms_mean`` weighted by the batches of the last minute)."""
    consumers = []
    for report in consumer_reports():
        stats = report.get("stats") or {}
        consumers.append({"member": report["member"], **stats})
    weighted = [
        (c["batch_ms_mean"], c["batches_last_minute"])
        for c in consumers
        if c.get("batch_ms_mean") is not None
    ]
    batches = sum(n for _, n in weighted)
    last_batches = [c["last_batch"] for c in consumers if c.get("last_batch")]
    last_errors = [c["last_error"] for c in consumers if c.get("last_error")]
    return {
        "group": settings.PIPELINE_GROUP_ID,
        "consumers": len(consumers),
        "events_per_second": round(sum(c.get("events_per_second", 0) for c in consumers), 2),
        "events": sum(c.get("events", 0) for c in consumers),
        "quarantined": sum(c.get("quarantined", 0) for c in consumers),
        "deliveries": sum(c.get("deliveries", 0) for c in consumers),
        "batches": sum(c.get("batches", 0) for c in consumers),
        "failures": sum(c.get("failures", 0) for c in consumers),
        "batch_ms_mean": round(sum(m * n for m, n in weighted) / batches, 1) if batches else None,
        "batch_ms_max": max(
            (c["batch_ms_max"] for c in consumers if c.get("batch_ms_max") is not None),
            default=None,
        ),
        "last_batch": max(last_batches, key=lambda b: b["at"], default=None),
        "last_error": max(last_errors, key=lambda e: e["at"], default=None),
        "per_consumer": consumers,
    }
