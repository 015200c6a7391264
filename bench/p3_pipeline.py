"""P3: pipeline throughput (Kafka -> MongoDB -> routing -> Delivery rows), next to MongoDB's
insert_many rate for the same documents in the same run (the ratio's limit).

    DJANGO_SETTINGS_MODULE=eventhub.settings .venv/bin/python bench/p3_pipeline.py [--events N]

Runs against the local stack's services (``make services`` and ``make prepare`` first). It uses
its own topic, consumer group, event type and 10 subscriptions (one matches each event through
its filter), and removes its rows, documents and topic afterwards.

The pipeline queues the ``deliver`` tasks of new deliveries after each commit, as in production:
that cost is measured. The tasks go to Redis database 14 (``CELERY_BROKER_URL`` unless set), in a
queue of this run's own that no worker reads, counted as Celery sends them and dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import figures  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventhub.settings")
os.environ.setdefault("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")

import django  # noqa: E402
import redis  # noqa: E402
from celery.signals import after_task_publish  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from core import kafka, mongo  # noqa: E402
from core.documents import event_document  # noqa: E402
from eventhub.celery import app as celery_app  # noqa: E402
from events.models import EventType  # noqa: E402
from events.registry import registry  # noqa: E402
from events.services import encode  # noqa: E402
from pipeline.consumer import PipelineConsumer  # noqa: E402
from subscriptions.models import Subscriber, Subscription  # noqa: E402
from webhooks.models import Delivery  # noqa: E402

SUBSCRIPTIONS = 10


NOW = datetime.now(tz=UTC).isoformat()  # rollups of every period are written for it


def bench_envelopes(run: str, type_name: str, count: int) -> Iterator[dict]:
    """The run's events, the same each time they are asked for; each matches one of the
    subscriptions (``payload.n``)."""
    for i in range(count):
        yield {
            "id": f"{run}-{i}",
            "source": "/bench",
            "specversion": "1.0",
            "type": type_name,
            "time": NOW,
            "subject": f"user-{i % 1000}",
            "data": {"n": i % SUBSCRIPTIONS, "amount": i, "note": "benchmark event"},
        }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=settings.PIPELINE_BATCH_SIZE)
    parser.add_argument(
        "--what-if-without-rollups",
        action="store_true",
        help="skip counting the events in the rollups (what the rollups cost)",
    )
    args = parser.parse_args()
    if args.what_if_without_rollups:
        import pipeline.batch

        pipeline.batch.rollups_add = lambda keys: 0

    run = uuid.uuid4().hex[:8]
    settings.KAFKA_TOPIC_EVENTS = f"bench.{run}.events"
    settings.PIPELINE_GROUP_ID = f"bench-{run}"
    # the deliver tasks go to a queue of the run's own: no worker takes them, none is lost
    task_queue = f"bench.p3.{run}"
    # (the settings are read under their CELERY_ names: the tests' eager_tasks does the same)
    celery_app.conf.update(CELERY_TASK_ROUTES={"webhooks.tasks.deliver": {"queue": task_queue}})
    kafka.ensure_topics([kafka.TopicSpec(settings.KAFKA_TOPIC_EVENTS, settings.KAFKA_PARTITIONS)])
    type_name = f"bench.run_{run}"
    EventType.objects.create(name=type_name, schema={"type": "object"}, retention_days=1)
    registry.invalidate()
    subscriber = Subscriber.objects.create(name=f"bench {run}")
    Subscription.objects.bulk_create(
        Subscription(
            subscriber=subscriber,
            url="https://example.com/hook",
            event_types=[type_name],
            filter={"payload.n": k},
        )
        for k in range(SUBSCRIPTIONS)
    )
    publisher = kafka.get_publisher()
    started = time.perf_counter()
    # made as they are sent, not kept: 100,000 envelopes held during the run would make every
    # garbage collection of the pipeline's process walk them, a cost production does not have
    for envelope in bench_envelopes(run, type_name, args.events):
        publisher.publish(
            settings.KAFKA_TOPIC_EVENTS, encode(envelope), key=envelope["subject"].encode()
        )
    publisher.flush(120)
    produce_rate = args.events / (time.perf_counter() - started)
    tasks = 0

    def count_task(sender: str | None = None, **kwargs: object) -> None:
        nonlocal tasks
        tasks += sender == "webhooks.tasks.deliver"

    after_task_publish.connect(count_task, weak=False)

    consumer = PipelineConsumer(batch_size=args.batch_size)
    load = os.getloadavg()[0]
    started = time.monotonic()
    cpu_started = time.process_time()
    processed = consumer.run(max_events=args.events, idle_exit_seconds=20)
    finished = time.monotonic()
    cpu_seconds = time.process_time() - cpu_started
    # the group join (about half the session timeout) happens once per consumer start
    join_seconds = consumer.first_batch_at - started
    pipeline_seconds = finished - consumer.first_batch_at
    deliveries = Delivery.objects.filter(subscription__subscriber=subscriber).count()
    after_task_publish.disconnect(count_task)
    broker = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    broker.delete(task_queue, f"_kombu.binding.{task_queue}")
    broker.close()

    documents = [
        event_document(e, retention_days=1) for e in bench_envelopes(run, type_name, args.events)
    ]
    scratch = mongo.get_db()[f"bench_{run}"]
    started = time.perf_counter()
    for offset in range(0, len(documents), args.batch_size):
        scratch.insert_many(documents[offset : offset + args.batch_size], ordered=False)
    insert_seconds = time.perf_counter() - started

    pipeline_rate = processed / pipeline_seconds
    insert_rate = len(documents) / insert_seconds
    print(
        f"events: {args.events}, batch size {args.batch_size}, {SUBSCRIPTIONS} subscriptions"
        + (", WHAT-IF without rollups" if args.what_if_without_rollups else "")
    )
    print(f"load average (1 min):   {load:10.2f} before the pipeline ran")
    print(f"produce (setup):        {produce_rate:10.0f} events/s")
    print(f"group join (once):      {join_seconds:10.2f} s")
    print(
        f"pipeline:               {pipeline_rate:10.0f} events/s ({processed} events in "
        f"{pipeline_seconds:.2f} s after the join, {deliveries} deliveries, {tasks} tasks queued)"
    )
    print(f"pipeline process CPU:   {cpu_seconds / processed * 1e6:10.0f} us/event")
    print(f"MongoDB insert_many:    {insert_rate:10.0f} docs/s")
    print(f"pipeline / insert_many: {pipeline_rate / insert_rate:10.1%}")
    assert deliveries == args.events, "each event should match exactly one subscription"
    figures.emit(
        "P3",
        {
            "events": args.events,
            "subscriptions": SUBSCRIPTIONS,
            "load_before": round(load, 2),
            "pipeline_per_s": round(pipeline_rate),
            "cpu_us_per_event": round(cpu_seconds / processed * 1e6),
            "insert_many_per_s": round(insert_rate),
            "ratio": round(pipeline_rate / insert_rate, 3),
        },
    )

    scratch.drop()
    mongo.get_db()[mongo.EVENTS].delete_many({"type": type_name})
    mongo.get_db()[mongo.METRICS].delete_many({"type": type_name})
    Delivery.objects.filter(subscription__subscriber=subscriber).delete()
    subscriber.delete()
    EventType.objects.filter(name=type_name).delete()
    kafka.get_admin().delete_topics([settings.KAFKA_TOPIC_EVENTS])


if __name__ == "__main__":
    main()
