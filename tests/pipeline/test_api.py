"""GET /api/v1/pipeline/lag and /stats (and their GraphQL queries) against the real broker and
Redis: the lag from the admin API, the figures a running consumer reports."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from django.conf import settings
from django.db import connection

from events.registry import registry
from pipeline.consumer import PipelineConsumer
from pipeline.lag import LagWatch
from tests.events.factories import EventTypeFactory
from tests.pipeline.test_lag import produce

pytestmark = pytest.mark.django_db(transaction=True)


def group_consumer() -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": settings.PIPELINE_GROUP_ID,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )


def test_lag_per_partition_is_the_committed_offset_against_the_watermark(
    topic, client, credentials
):
    produce(topic, 30)
    consumer = group_consumer()
    try:
        # the group committed 10 on partition 0 and nothing on partition 1
        consumer.commit(offsets=[TopicPartition(topic, 0, 10)], asynchronous=False)
        consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
        watch = LagWatch(consumer, interval=0, stall_after=60)
        watch.observe(fetched=0)  # one live consumer reports
        answer = client.get("/api/v1/pipeline/lag", **credentials["reader"])
        watch.forget()
    finally:
        consumer.close()
    assert answer.status_code == 200, answer.content
    body = answer.json()
    assert body["topic"] == topic and body["group"] == settings.PIPELINE_GROUP_ID
    assert body["partitions"] == [
        {"partition": 0, "committed": 10, "low_watermark": 0, "high_watermark": 30, "lag": 20},
        {"partition": 1, "committed": -1, "low_watermark": 0, "high_watermark": 30, "lag": 30},
    ]
    assert body["lag"] == 50
    (reported,) = body["consumers"]
    assert reported["member"] == watch.member and reported["stalled"] is False
    assert body["stalled"] is False


def test_lag_without_a_running_consumer_still_comes_from_the_broker(topic, client, credentials):
    produce(topic, 4)
    body = client.get("/api/v1/pipeline/lag", **credentials["reader"]).json()
    assert body["lag"] == 8 and body["consumers"] == []


def test_lag_answers_503_with_retry_after_when_kafka_is_down(
    topic, client, credentials, settings, free_port, fresh_kafka_clients
):
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{free_port}"
    settings.HEALTH_CHECK_TIMEOUT = 0.5
    answer = client.get("/api/v1/pipeline/lag", **credentials["reader"])
    assert answer.status_code == 503
    assert answer["Content-Type"] == "application/problem+json"
    assert int(answer["Retry-After"]) > 0
    (error,) = client.post(
        "/graphql",
        json.dumps({"query": "{ pipelineLag { lag } }"}),
        content_type="application/json",
        **credentials["reader"],
    ).json()["errors"]
    assert error["extensions"]["code"] == "UNAVAILABLE" and error["extensions"]["retryAfter"] > 0


def envelopes(count: int) -> bytes:
    return [
        json.dumps(
            {
                "id": str(uuid.uuid4()),
                "source": "/stats",
                "specversion": "1.0",
                "type": "order.created",
                "data": {"n": i},
            }
        ).encode()
        for i in range(count)
    ]


def test_stats_show_what_a_running_consumer_processed(
    topic, client, credentials, settings, mongo_db
):
    EventTypeFactory(name="order.created", schema={"type": "object"})
    registry.invalidate()
    settings.PIPELINE_LAG_CHECK_SECONDS = 0.2
    producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    for value in envelopes(25):
        producer.produce(topic, value=value)
    producer.produce(topic, value=b"not json")  # quarantined
    assert producer.flush(10) == 0

    consumer = PipelineConsumer(batch_timeout_ms=100)

    def run() -> None:
        try:
            consumer.run(idle_exit_seconds=30)
        finally:
            connection.close()  # the thread's own, so that the test database can go

    thread = threading.Thread(target=run)
    thread.start()
    try:
        deadline = time.monotonic() + 30
        stats = {}
        while time.monotonic() < deadline:
            stats = client.get("/api/v1/pipeline/stats", **credentials["reader"]).json()
            if stats.get("events") == 25:
                break
            time.sleep(0.2)
        query = "{ pipelineStats { events perConsumer { member events lastBatch { events } } } }"
        graphql = client.post(
            "/graphql",
            json.dumps({"query": query}),
            content_type="application/json",
            **credentials["reader"],
        ).json()["data"]["pipelineStats"]
    finally:
        consumer.stop()
        thread.join(20)
    registry.invalidate()
    assert stats["consumers"] == 1
    assert stats["events"] == 25 and stats["quarantined"] == 1
    assert stats["events_per_second"] > 0
    assert stats["batches"] >= 1 and stats["batch_ms_mean"] > 0
    assert stats["last_batch"]["duration_ms"] > 0
    assert stats["failures"] == 0 and stats["last_error"] is None
    (mine,) = stats["per_consumer"]
    assert mine["events"] == 25 and mine["member"] == consumer.lag.member
    assert graphql["events"] == 25
    assert graphql["perConsumer"][0]["member"] == mine["member"]
    assert graphql["perConsumer"][0]["lastBatch"]["events"] == mine["last_batch"]["events"]
    # the consumer removes its report when it stops
    assert client.get("/api/v1/pipeline/stats", **credentials["reader"]).json()["consumers"] == 0


def test_graphql_answers_the_same_lag(topic, client, credentials):
    produce(topic, 3)
    query = "{ pipelineLag { lag partitions { partition lag highWatermark committed } } }"
    answer = client.post(
        "/graphql",
        json.dumps({"query": query}),
        content_type="application/json",
        **credentials["reader"],
    ).json()
    assert answer["data"]["pipelineLag"] == {
        "lag": 6,
        "partitions": [
            {"partition": 0, "lag": 3, "highWatermark": 3, "committed": -1},
            {"partition": 1, "lag": 3, "highWatermark": 3, "committed": -1},
        ],
    }
