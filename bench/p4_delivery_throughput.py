"""P4: webhook delivery throughput (Celery ``deliver`` tasks -> signed POSTs -> attempts
recorded), next to django-webhook delivering to the same receiver in the same run (the ratio).

    .venv/bin/python bench/p4_delivery_throughput.py [--deliveries 20000]
        [--layouts 1x16x100,2x4x500] [--baseline-webhooks 2000] [--skip-baseline]

A layout is ``PROCESSESxTHREADSxBATCH``: that many ``webhooks`` Celery workers (thread pool of
THREADS, as ``make up`` starts them) with ``WEBHOOK_TASK_BATCH=BATCH``. For each layout the
script stores the events in MongoDB (the sender loads them from there), creates the pending
Delivery rows of a fresh subscription, queues them with ``deliveries_enqueue`` and times until
no row is pending or in flight any more (the last row's ``updated_at`` ends the clock), then
counts the succeeded rows, the DeliveryAttempt rows and the requests the receiver got, and
prints the CPU each delivery cost the workers, the receiver and the services. The receiver
(``bench/receiver.py``) answers 200 at once on 127.0.0.1. The default layouts are the one
``make up`` starts and the best found on a 2-core machine.

The baseline, django-webhook 0.0.15 (``pip install -r bench/requirements.txt``), runs in its own
Django project (``bench/webhook_baseline``) with its own Celery worker on Celery's default pool;
it is slow, so it sends fewer webhooks (``--baseline-webhooks``).

Runs against the local services with its own databases (``bench/processes.py``) and removes its
rows, documents and queued tasks afterwards.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import figures
import processes

sys.path.insert(0, str(processes.ROOT))

import django  # noqa: E402

django.setup()
processes.route_deliveries_to_bench_queue()

from django.conf import settings  # noqa: E402
from django.db.models import Count, Max  # noqa: E402
from django.utils import timezone  # noqa: E402

from core import mongo  # noqa: E402
from core.documents import event_document  # noqa: E402
from eventhub import celery_app  # noqa: E402
from events.models import EventType  # noqa: E402
from subscriptions.models import Subscriber, Subscription  # noqa: E402
from subscriptions.services import subscription_add_secret  # noqa: E402
from webhooks.models import Delivery, DeliveryAttempt  # noqa: E402
from webhooks.services.queueing import deliveries_enqueue  # noqa: E402

WARMUP = 1000


@dataclass(frozen=True)
class Layout:
    processes: int
    threads: int
    batch: int

    @classmethod
    def parse(cls, text: str) -> Layout:
        processes_, threads, batch = (int(part) for part in text.lower().split("x"))
        return cls(processes_, threads, batch)

    def __str__(self) -> str:
        return f"{self.processes} x {self.threads} threads, batch {self.batch}"


@dataclass
class Result:
    layout: Layout
    deliveries: int
    succeeded: int
    attempts: int
    received: int
    seconds: float
    worker_cpu: float  # CPU seconds of the worker processes per wall second
    busy_before: float  # share of the cores other programs used just before
    failures: dict[str, int]  # attempts that failed, by error class
    cpu_ms: dict[str, float]  # CPU per delivery (ms) of the workers, receiver and services
    peak_memory_mb: dict[str, float]  # P7: peak PSS of the workers, receiver and services

    @property
    def rate(self) -> float:
        return self.succeeded / self.seconds


def store_events(type_name: str, run: str, count: int) -> list[str]:
    """Events as the pipeline stores them in MongoDB; returns their ids."""
    received_at = datetime.now(tz=UTC)
    documents = [
        event_document(
            {
                "id": f"{run}-{i}",
                "source": "/bench",
                "type": type_name,
                "time": "2026-11-23T10:00:00+00:00",
                "subject": f"user-{i % 1000}",
                "data": {"n": i, "amount": i * 7, "note": "benchmark event"},
            },
            retention_days=1,
            received_at=received_at,
        )
        for i in range(count)
    ]
    collection = mongo.get_db()[mongo.EVENTS]
    for offset in range(0, count, 5000):
        collection.insert_many(documents[offset : offset + 5000], ordered=False)
    return [d["event_id"] for d in documents]


def new_subscription(subscriber: Subscriber, type_name: str, url: str) -> Subscription:
    subscription = Subscription.objects.create(
        subscriber=subscriber, url=url, event_types=[type_name]
    )
    subscription_add_secret(subscription=subscription)
    return subscription


def pending_deliveries(
    subscription: Subscription, type_name: str, event_ids: list[str]
) -> list[tuple[int, int]]:
    """Pending rows as the pipeline leaves them: the sweeper's lease ahead."""
    lease = timezone.now() + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
    rows = Delivery.objects.bulk_create(
        [
            Delivery(
                event_id=event_id,
                event_source="/bench",  # the events stored above (an event is its source and id)
                event_type=type_name,
                subscription=subscription,
                partition_key="",
                status=Delivery.Status.PENDING,
                next_attempt_at=lease,
            )
            for event_id in event_ids
        ],
        batch_size=5000,
    )
    return [(row.pk, subscription.pk) for row in rows]


def wait_succeeded(subscription: Subscription, count: int, timeout: float) -> int:
    """Poll until no delivery is left pending or in flight, time ran out or progress stopped
    for 30 s; returns how many succeeded. The poll counts the unfinished rows through their
    partial index, so it stays cheap (the end time comes from the rows, not from the poll)."""
    unfinished = Delivery.objects.filter(
        subscription=subscription,
        status__in=[Delivery.Status.PENDING, Delivery.Status.IN_FLIGHT],
    )
    deadline = time.monotonic() + timeout
    left, progress_at = count, time.monotonic()
    while time.monotonic() < deadline:
        now_left = unfinished.count()
        if now_left == 0:
            break
        if now_left != left:
            left, progress_at = now_left, time.monotonic()
        elif time.monotonic() - progress_at > 30:
            break
        time.sleep(0.2)
    return Delivery.objects.filter(
        subscription=subscription, status=Delivery.Status.SUCCEEDED
    ).count()


def wait_for_workers(names: list[str], timeout: float = 60) -> None:
    def all_up() -> bool:
        replies = celery_app.control.ping(destination=names, timeout=0.5)
        return {name for reply in replies for name in reply} >= set(names)

    if not processes.wait_until(all_up, timeout=timeout, interval=0.5):
        raise SystemExit(f"the webhooks workers did not start in {timeout} s")


def measure(
    layout: Layout,
    subscriber: Subscriber,
    type_name: str,
    event_ids: list[str],
    receiver: processes.ReceiverProcess,
) -> Result:
    settings.WEBHOOK_TASK_BATCH = layout.batch  # deliveries_enqueue splits by it, here
    busy = processes.machine_busy()
    workers = [
        processes.webhooks_worker(i, threads=layout.threads, WEBHOOK_TASK_BATCH=str(layout.batch))
        for i in range(layout.processes)
    ]
    try:
        host = socket.gethostname()
        wait_for_workers([f"bench-webhooks-{i}@{host}" for i in range(layout.processes)])
        # warm-up: every worker's sender, connections and thread pool in use
        warm = new_subscription(subscriber, type_name, receiver.url())
        deliveries_enqueue(pending_deliveries(warm, type_name, event_ids[:WARMUP]))
        if wait_succeeded(warm, WARMUP, timeout=120) < WARMUP:
            raise SystemExit(f"{layout}: the warm-up deliveries did not all succeed")

        subscription = new_subscription(subscriber, type_name, receiver.url())
        rows = pending_deliveries(subscription, type_name, event_ids)
        received_before = receiver.stats()["count"]
        cpu_before = sum(processes.cpu_seconds(w.pid) for w in workers)
        receiver_before = processes.cpu_seconds(receiver.process.pid)
        services_before = processes.service_cpu()
        watch = figures.Watch(
            lambda: {
                "webhook workers": [
                    pid for w in workers for pid in (w.pid, *figures.children(w.pid))
                ],
                "receiver": [receiver.process.pid],
                **{
                    name: pids
                    for name, pids in figures.stack_processes().items()
                    if name in figures.SERVICES
                },
            }
        )
        started = time.time()
        deliveries_enqueue(rows)
        succeeded = wait_succeeded(subscription, len(rows), timeout=max(120, len(rows) / 100))
        # the last outcome written (the row's updated_at, same clock) ends the run
        finished = Delivery.objects.filter(subscription=subscription).aggregate(
            last=Max("updated_at")
        )["last"]
        seconds = finished.timestamp() - started
        _, peak = watch.stop()
        cpu = sum(processes.cpu_seconds(w.pid) for w in workers) - cpu_before
        services = processes.service_cpu()
        cpu_ms = {
            "workers": cpu,
            "receiver": processes.cpu_seconds(receiver.process.pid) - receiver_before,
            **{name: services[name] - services_before[name] for name in services},
        }
        cpu_ms = {name: 1000 * value / max(1, succeeded) for name, value in cpu_ms.items()}
        return Result(
            layout=layout,
            deliveries=len(rows),
            succeeded=succeeded,
            attempts=DeliveryAttempt.objects.filter(delivery__subscription=subscription).count(),
            received=receiver.stats()["count"] - received_before,
            seconds=seconds,
            worker_cpu=cpu / seconds,
            busy_before=busy,
            cpu_ms=cpu_ms,
            peak_memory_mb={name: round(mb, 1) for name, mb in peak.items()},
            failures=dict(
                DeliveryAttempt.objects.filter(delivery__subscription=subscription)
                .exclude(error_class="")
                .values_list("error_class")
                .annotate(n=Count("id"))
            ),
        )
    finally:
        for worker in workers:
            processes.stop(worker)


def run_baseline(receiver: processes.ReceiverProcess, webhooks: int) -> dict:
    output = subprocess.run(
        [
            sys.executable,
            str(processes.BENCH / "webhook_baseline" / "run.py"),
            "--url",
            receiver.url("/baseline"),
            "--webhooks",
            str(webhooks),
        ],
        capture_output=True,
        text=True,
        timeout=1800,
        check=False,
    )
    lines = [line for line in output.stdout.splitlines() if line.startswith("{")]
    if output.returncode or not lines:
        raise SystemExit(f"the django-webhook run failed:\n{output.stdout}\n{output.stderr}")
    return json.loads(lines[-1])


def cleanup(subscriber: Subscriber, type_name: str) -> None:
    processes.remove_run_data(subscriber, type_name)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--deliveries", type=int, default=20_000)
    parser.add_argument(
        "--layouts",
        default="1x16x100,2x4x500",
        help="comma-separated PROCESSESxTHREADSxBATCH; the best one is compared",
    )
    parser.add_argument("--baseline-webhooks", type=int, default=2000)
    parser.add_argument("--skip-baseline", action="store_true")
    args = parser.parse_args()
    layouts = [Layout.parse(text) for text in args.layouts.split(",")]

    run = uuid.uuid4().hex[:8]
    type_name = f"bench.p4_{run}"
    EventType.objects.create(name=type_name, schema={"type": "object"}, retention_days=1)
    subscriber = Subscriber.objects.create(name=f"bench p4 {run}")
    receiver = processes.ReceiverProcess()
    results: list[Result] = []
    try:
        event_ids = store_events(type_name, run, max(args.deliveries, WARMUP))
        print(f"deliveries per layout: {args.deliveries}, one endpoint, receiver {receiver.base}")
        for layout in layouts:
            result = measure(layout, subscriber, type_name, event_ids[: args.deliveries], receiver)
            results.append(result)
            print(
                f"  {str(layout):<28} {result.rate:8.0f} deliveries/s  ({result.succeeded} "
                f"succeeded in {result.seconds:.2f} s, {result.attempts} attempt rows, "
                f"{result.received} requests received, workers {result.worker_cpu:.0%} CPU; "
                f"other programs {result.busy_before:.0%} busy before)"
            )
            print(
                "    CPU per delivery: "
                + ", ".join(f"{name} {ms:.3f} ms" for name, ms in result.cpu_ms.items())
                + f" (all: {sum(result.cpu_ms.values()):.3f} ms)"
            )
            print(
                "    peak memory (PSS) MB: "
                + ", ".join(f"{name} {mb:.0f}" for name, mb in result.peak_memory_mb.items())
            )
            if result.failures:
                print(f"    failed attempts by error class: {result.failures}")
        best = max(results, key=lambda r: r.rate)
        print(f"best layout: {best.layout}: {best.rate:.0f} deliveries/s")
        found = {
            "deliveries": args.deliveries,
            "layouts": {
                str(r.layout): {"per_s": round(r.rate), "cpu_ms": r.cpu_ms} for r in results
            },
            "best_per_s": round(best.rate),
            "peak_memory_mb": best.peak_memory_mb,
        }
        if args.skip_baseline:
            figures.emit("P4", found)
            return
        baseline = run_baseline(receiver, args.baseline_webhooks)
        print(
            f"django-webhook 0.0.15:  {baseline['rate']:8.0f} webhooks/s  "
            f"({baseline['delivered']} of {baseline['webhooks']} in {baseline['seconds']:.2f} s, "
            f"{baseline['events_rows']} WebhookEvent rows; Celery prefork, default concurrency)"
        )
        print(f"ours / django-webhook:  {best.rate / baseline['rate']:8.1f}x")
        found.update(
            baseline_per_s=round(baseline["rate"]), ratio=round(best.rate / baseline["rate"], 1)
        )
        figures.emit("P4", found)
    finally:
        receiver.stop()
        cleanup(subscriber, type_name)


if __name__ == "__main__":
    main()
