"""P3: pipeline throughput (Kafka -> MongoDB -> routing -> Delivery rows), next to MongoDB's
insert_many rate for the same documents in the same run (the ratio's limit).

    DJANGO_SETTINGS_MODULE=eventhub.settings .venv/bin/python bench/p3_pipeline.py [--events N]

Runs against the local stack's services (``make services`` and ``make prepare`` first). It uses
its own topic, consumer group, event type and 10 subscriptions (one matches each event through
its filter), and removes its rows, documents and topic afterwards.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventhub.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402

from eventhub import kafka, mongo  # noqa: E402
from events.documents import event_document  # noqa: E402
from events.models import EventType  # noqa: E402
from events.pipeline import PipelineConsumer  # noqa: E402
from events.registry import registry  # noqa: E402
from events.services import encode  # noqa: E402
from subscriptions.models import Subscriber, Subscription  # noqa: E402
from webhooks.models import Delivery  # noqa: E402

SUBSCRIPTIONS = 10


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=50_000)
    parser.add_argument("--batch-size", type=int, default=settings.PIPELINE_BATCH_SIZE)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    settings.KAFKA_TOPIC_EVENTS = f"bench.{run}.events"
    settings.PIPELINE_GROUP_ID = f"bench-{run}"
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
    envelopes = [
        {
            "id": f"{run}-{i}",
            "source": "/bench",
            "specversion": "1.0",
            "type": type_name,
            "time": "2026-11-20T10:00:00Z",
            "subject": f"user-{i % 1000}",
            "data": {"n": i % SUBSCRIPTIONS, "amount": i, "note": "benchmark event"},
        }
        for i in range(args.events)
    ]
    publisher = kafka.get_publisher()
    started = time.perf_counter()
    for envelope in envelopes:
        publisher.publish(
            settings.KAFKA_TOPIC_EVENTS, encode(envelope), key=envelope["subject"].encode()
        )
    publisher.flush(120)
    produce_rate = args.events / (time.perf_counter() - started)

    consumer = PipelineConsumer(batch_size=args.batch_size)
    started = time.monotonic()
    processed = consumer.run(max_events=args.events, idle_exit_seconds=20)
    finished = time.monotonic()
    # the group join (about half the session timeout) happens once per consumer start
    join_seconds = consumer.first_batch_at - started
    pipeline_seconds = finished - consumer.first_batch_at
    deliveries = Delivery.objects.filter(subscription__subscriber=subscriber).count()

    documents = [event_document(e, retention_days=1) for e in envelopes]
    scratch = mongo.get_db()[f"bench_{run}"]
    started = time.perf_counter()
    for offset in range(0, len(documents), args.batch_size):
        scratch.insert_many(documents[offset : offset + args.batch_size], ordered=False)
    insert_seconds = time.perf_counter() - started

    pipeline_rate = processed / pipeline_seconds
    insert_rate = len(documents) / insert_seconds
    print(f"events: {args.events}, batch size {args.batch_size}, {SUBSCRIPTIONS} subscriptions")
    print(f"produce (setup):        {produce_rate:10.0f} events/s")
    print(f"group join (once):      {join_seconds:10.2f} s")
    print(
        f"pipeline:               {pipeline_rate:10.0f} events/s ({processed} events in "
        f"{pipeline_seconds:.2f} s after the join, {deliveries} deliveries)"
    )
    print(f"MongoDB insert_many:    {insert_rate:10.0f} docs/s")
    print(f"pipeline / insert_many: {pipeline_rate / insert_rate:10.1%}")
    assert deliveries == args.events, "each event should match exactly one subscription"

    scratch.drop()
    mongo.get_db()[mongo.EVENTS].delete_many({"type": type_name})
    Delivery.objects.filter(subscription__subscriber=subscriber).delete()
    subscriber.delete()
    EventType.objects.filter(name=type_name).delete()
    kafka.get_admin().delete_topics([settings.KAFKA_TOPIC_EVENTS])


if __name__ == "__main__":
    main()
