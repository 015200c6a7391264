"""P5: publish -> received latency through the whole stack at a steady event rate.

    .venv/bin/python bench/p5_latency.py [--rate 200 --duration 60]
        [--workers 1 --threads 16 --task-batch 100] [--batch-timeout-ms 200]

Events are published with ``events_publish`` (the ingest service behind the REST, GraphQL and
gRPC APIs; asynchronous mode) on a fixed schedule; each carries ``data.sent_at``, the moment it
was handed to the service. They travel through Kafka, the pipeline consumer
(``manage.py consume_events`` in a subprocess, short batch timeout), PostgreSQL, Celery (the
``webhooks`` worker as ``make up`` starts it) and the sender to ``bench/receiver.py``, which
records receipt minus ``sent_at``. The sweeper runs every second in this process, as Celery beat
would run it. Prints p50 / p95 / p99 / max and the deliveries that did not arrive.

Its own topic, consumer group, event type and subscriptions; all removed afterwards (as are the
rows, documents and queued tasks). ``bench/p6_isolation.py`` runs the same measurement with a
subscription whose endpoint never answers.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from itertools import islice

import figures
import processes

sys.path.insert(0, str(processes.ROOT))

import django  # noqa: E402

django.setup()
processes.route_deliveries_to_bench_queue()

from django.conf import settings  # noqa: E402
from django.db import close_old_connections, connection  # noqa: E402
from django.db.models import Count  # noqa: E402

from core import kafka, mongo  # noqa: E402
from core.redis import get_redis  # noqa: E402
from events.models import EventType  # noqa: E402
from events.registry import registry  # noqa: E402
from events.services import Door, events_publish  # noqa: E402
from subscriptions.models import Subscriber, Subscription  # noqa: E402
from subscriptions.services import subscription_add_secret  # noqa: E402
from webhooks.models import Delivery  # noqa: E402
from webhooks.services.queueing import deliveries_sweep  # noqa: E402


@dataclass
class Endpoint:
    """One subscription of the run: its receiver path, and whether its endpoint answers."""

    path: str
    silent: bool = False


@dataclass
class LatencyResult:
    published: int
    publish_seconds: float
    max_publish_lag_ms: float
    expected: int  # deliveries to endpoints that answer
    expected_by_path: dict[str, int] = field(default_factory=dict)
    latencies_ms: dict[str, list[float]] = field(default_factory=dict)
    status_counts: dict[str, int] = field(default_factory=dict)
    stages_ms: dict[str, list[float]] = field(default_factory=dict)
    machine_busy: float = 0.0  # share of both cores busy while publishing
    ours_cpu: float = 0.0  # CPU of the workers, consumer, receivers and publisher (cores)

    def healthy(self, paths: list[str] | None = None) -> list[float]:
        """Latencies to the ``paths`` (default: every endpoint that answers); a delivery that
        never arrived counts as infinitely late, so it cannot flatter a percentile."""
        chosen = paths if paths is not None else list(self.expected_by_path)
        values = [value for path in chosen for value in self.latencies_ms.get(path, [])]
        missing = sum(self.expected_by_path.get(path, 0) for path in chosen) - len(values)
        return values + [math.inf] * max(0, missing)


def summary(latencies: list[float]) -> str:
    """p50 / p95 / p99 / max; "> 30 s" where the percentile falls on deliveries that had not
    arrived 30 s after the last publish (the wait for stragglers)."""

    def show(value: float) -> str:
        return " > 30 s" if math.isinf(value) else f"{value:7.1f} ms"

    p = processes.percentile
    lost = sum(1 for value in latencies if math.isinf(value))
    return (
        f"p50 {show(p(latencies, 0.50))}   p95 {show(p(latencies, 0.95))}   "
        f"p99 {show(p(latencies, 0.99))}   max {show(max(latencies, default=math.nan))}"
        f"   ({len(latencies) - lost} received, {lost} not within 30 s of the last publish)"
    )


class Sweeper(threading.Thread):
    """``deliveries_sweep`` every ``WEBHOOK_SWEEP_SECONDS``, as the beat schedule runs it."""

    def __init__(self) -> None:
        super().__init__(name="sweeper", daemon=True)
        self.stopping = threading.Event()

    def run(self) -> None:
        while not self.stopping.wait(settings.WEBHOOK_SWEEP_SECONDS):
            deliveries_sweep()
        close_old_connections()
        connection.close()


def publish_steadily(type_name: str, run: str, endpoints: int, rate: float, duration: float):
    """Publish ``rate`` events/s for ``duration`` s on a fixed schedule (open loop); event i
    goes to subscription ``i % endpoints`` (through its filter). Returns (count, seconds, max
    lag behind the schedule in ms, the time each event was handed over by id)."""
    total = int(rate * duration)
    sent: dict[str, float] = {}
    started = time.perf_counter()
    max_lag = 0.0
    for i in range(total):
        scheduled = started + i / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            time.sleep(delay)
        else:
            max_lag = max(max_lag, -delay)
        envelope = {
            "id": f"{run}-{i}",
            "source": "/bench",
            "specversion": "1.0",
            "type": type_name,
            "time": "2026-11-23T10:00:00Z",
            "subject": f"user-{i % 1000}",
            "data": {"n": i % endpoints, "amount": i, "sent_at": time.time()},
        }
        sent[envelope["id"]] = envelope["data"]["sent_at"]
        events_publish(envelopes=[envelope], wait=False, door=Door.REST, request_id=f"bench-{run}")
    kafka.get_publisher().flush(10)
    return total, time.perf_counter() - started, max_lag * 1000, sent


def measure_latency(
    *,
    endpoints: list[Endpoint],
    rate: float,
    duration: float,
    workers: int,
    threads: int,
    task_batch: int,
    batch_timeout_ms: int,
    timeout_seconds: int = 5,
    label: str = "p5",
    fetch_wait_ms: int | None = None,
) -> LatencyResult:
    """Run the whole stack for one configuration and return what the receiver measured."""
    run = uuid.uuid4().hex[:8]
    topics = {
        "KAFKA_TOPIC_EVENTS": f"bench.{run}.events",
        "KAFKA_TOPIC_DLQ": f"bench.{run}.dlq",
        "KAFKA_TOPIC_QUARANTINE": f"bench.{run}.quarantine",
    }
    env = {
        **topics,
        "PIPELINE_GROUP_ID": f"bench-{run}",
        "WEBHOOK_TASK_BATCH": str(task_batch),
    }
    for name, value in topics.items():
        setattr(settings, name, value)
    kafka.ensure_topics(
        [kafka.TopicSpec(topics["KAFKA_TOPIC_EVENTS"], settings.KAFKA_PARTITIONS)]
        + [
            kafka.TopicSpec(topics[name], 1)
            for name in ("KAFKA_TOPIC_DLQ", "KAFKA_TOPIC_QUARANTINE")
        ]
    )
    processes.purge_broker_queue()
    type_name = f"bench.{label}_{run}"
    EventType.objects.create(name=type_name, schema={"type": "object"}, retention_days=1)
    registry.invalidate()
    subscriber = Subscriber.objects.create(name=f"bench {label} {run}")
    healthy = processes.ReceiverProcess()
    silent = processes.ReceiverProcess(silent=True) if any(e.silent for e in endpoints) else None
    for k, endpoint in enumerate(endpoints):
        base = silent.base if endpoint.silent and silent else healthy.base
        subscription = Subscription.objects.create(
            subscriber=subscriber,
            url=base + endpoint.path,
            event_types=[type_name],
            filter={"payload.n": k} if len(endpoints) > 1 else None,
            timeout_seconds=timeout_seconds,
        )
        subscription_add_secret(subscription=subscription)

    started: list = []
    sweeper = Sweeper()
    busy = processes.machine_busy()
    print(f"[{label}] other programs kept {busy:.0%} of the cores busy before the run")
    try:
        started.append(
            processes.pipeline_consumer(
                batch_timeout_ms=batch_timeout_ms, fetch_wait_ms=fetch_wait_ms, **env
            )
        )
        for i in range(workers):
            started.append(processes.webhooks_worker(i, threads=threads, **env))
        sweeper.start()
        # warm-up: the consumer joins its group, every process connects; then a clean slate
        warm_until = time.monotonic() + 90
        n = 0
        while healthy.stats()["count"] < 20 and time.monotonic() < warm_until:
            publish_steadily(type_name, f"{run}-warm{n}", len(endpoints), 20, 0.5)
            n += 1
        if healthy.stats()["count"] < 20:
            raise SystemExit("warm-up: no webhook arrived within 90 s; see " + str(processes.LOGS))
        time.sleep(2)
        healthy.reset()

        window = processes.CpuWindow(
            [p.pid for p in started]
            + [healthy.process.pid, os.getpid()]
            + ([silent.process.pid] if silent else [])
        )
        published, seconds, lag, sent = publish_steadily(
            type_name, run, len(endpoints), rate, duration
        )
        busy_during, ours_cpu = window.stop()
        answering = [k for k, e in enumerate(endpoints) if not e.silent]
        expected_by_path = {
            endpoints[k].path: sum(1 for i in range(published) if i % len(endpoints) == k)
            for k in answering
        }
        expected = sum(expected_by_path.values())
        processes.wait_until(lambda: healthy.stats()["count"] >= expected, timeout=30, interval=0.5)
        stats = healthy.stats()
        stages = stage_times(type_name, subscriber, sent, healthy.receipts())
        statuses = dict(
            Delivery.objects.filter(subscription__subscriber=subscriber, event_id__startswith=run)
            .exclude(event_id__contains="warm")
            .values_list("status")
            .annotate(n=Count("id"))
        )
        return LatencyResult(
            published=published,
            publish_seconds=seconds,
            max_publish_lag_ms=lag,
            expected=expected,
            expected_by_path=expected_by_path,
            latencies_ms=stats["latencies_ms"],
            status_counts=statuses,
            stages_ms=stages,
            machine_busy=busy_during,
            ours_cpu=ours_cpu,
        )
    finally:
        sweeper.stopping.set()
        for process in started:
            processes.stop(process)
        sweeper.join(10)
        healthy.stop()
        if silent:
            silent.stop()
        cleanup(subscriber, type_name, list(topics.values()), run)


def stage_times(
    type_name: str, subscriber: Subscriber, sent: dict[str, float], receipts: dict[str, float]
) -> dict[str, list[float]]:
    """Where the time went, per delivered event (ms): publish -> the pipeline's batch (Kafka and
    the consumer's batching; ``received_at`` of the stored event), batch -> the delivery row
    (storing in MongoDB, routing; the row's ``created_at``, its transaction's start) and row ->
    received (commit, Celery, claim, loading, signing, the request)."""
    batch_at = {
        d["event_id"]: d["received_at"].timestamp()
        for d in mongo.get_db()[mongo.EVENTS].find(
            {"type": type_name, "event_id": {"$in": list(receipts)}},
            {"event_id": 1, "received_at": 1},
        )
    }
    row_at = {
        event_id: created.timestamp()
        for event_id, created in Delivery.objects.filter(
            subscription__subscriber=subscriber, event_id__in=list(receipts)
        ).values_list("event_id", "created_at")
    }
    stages: dict[str, list[float]] = {
        "publish -> pipeline batch": [],
        "pipeline batch -> delivery row": [],
        "delivery row -> received": [],
    }
    for event_id, received in receipts.items():
        if event_id in sent and event_id in batch_at and event_id in row_at:
            stages["publish -> pipeline batch"].append((batch_at[event_id] - sent[event_id]) * 1000)
            stages["pipeline batch -> delivery row"].append(
                (row_at[event_id] - batch_at[event_id]) * 1000
            )
            stages["delivery row -> received"].append((received - row_at[event_id]) * 1000)
    return stages


def print_stages(result: LatencyResult) -> None:
    p = processes.percentile
    for name, values in result.stages_ms.items():
        print(f"  {name:<32} p50 {p(values, 0.5):7.1f} ms   p99 {p(values, 0.99):7.1f} ms")


def cleanup(subscriber: Subscriber, type_name: str, topics: list[str], run: str) -> None:
    processes.remove_run_data(subscriber, type_name)
    kafka.get_admin().delete_topics(topics)
    redis = get_redis()  # the ingest service's idempotency keys of the run's events
    for keys in batched(redis.scan_iter(match=f"eventhub:seen:*:{run}-*", count=1000), 500):
        redis.delete(*keys)


def batched(items, size: int):
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


def add_stack_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--rate", type=float, default=200, help="events per second")
    parser.add_argument("--duration", type=float, default=60, help="seconds of publishing")
    parser.add_argument("--workers", type=int, default=1, help="webhooks worker processes")
    parser.add_argument("--threads", type=int, default=16, help="threads per worker")
    parser.add_argument("--task-batch", type=int, default=100, help="WEBHOOK_TASK_BATCH")
    parser.add_argument(
        "--batch-timeout-ms",
        type=int,
        default=settings.PIPELINE_BATCH_TIMEOUT_MS,
        help="pipeline batch timeout (default: the setting, as make up runs)",
    )
    parser.add_argument(
        "--what-if-fetch-wait-ms",
        type=int,
        default=None,
        help="what-if: the consumer with librdkafka's fetch.wait.max.ms set (bench only)",
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    add_stack_arguments(parser)
    args = parser.parse_args()
    result = measure_latency(
        endpoints=[Endpoint("/hook/0")],
        rate=args.rate,
        duration=args.duration,
        workers=args.workers,
        threads=args.threads,
        task_batch=args.task_batch,
        batch_timeout_ms=args.batch_timeout_ms,
        fetch_wait_ms=args.what_if_fetch_wait_ms,
    )
    latencies = result.healthy()
    print(
        f"published {result.published} events in {result.publish_seconds:.1f} s "
        f"({result.published / result.publish_seconds:.0f}/s, at most "
        f"{result.max_publish_lag_ms:.0f} ms behind schedule); pipeline batch timeout "
        f"{args.batch_timeout_ms} ms; {args.workers} worker(s) x {args.threads} threads"
        + (
            f"; WHAT-IF consumer fetch.wait.max.ms={args.what_if_fetch_wait_ms}"
            if args.what_if_fetch_wait_ms is not None
            else ""
        )
    )
    print(
        f"while publishing: the machine {result.machine_busy:.0%} busy (both cores); "
        f"this benchmark's processes {result.ours_cpu:.2f} cores, the services and other "
        "programs the rest"
    )
    print(f"publish -> received: {summary(latencies)}")
    print("where the time goes (each stage on its own):")
    print_stages(result)
    print(f"delivery rows: {result.status_counts}")
    figures.emit(
        "P5",
        {
            "rate": args.rate,
            "duration_s": args.duration,
            "batch_timeout_ms": args.batch_timeout_ms,
            "received": len(latencies),
            "published": result.published,
            "machine_busy": round(result.machine_busy, 3),
            **{
                f"p{q}_ms": round(processes.percentile(latencies, q / 100), 1) for q in (50, 95, 99)
            },
            "max_ms": round(max(latencies), 1) if latencies else None,
        },
    )


if __name__ == "__main__":
    main()
