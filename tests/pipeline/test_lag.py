"""Consumer lag from the broker's watermarks, and a stalled consumer said out loud."""

from __future__ import annotations

import logging
import time

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from django.conf import settings

from pipeline.lag import LagWatch, gauges


def produce(topic: str, per_partition: int) -> None:
    producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS})
    for partition in (0, 1):
        for i in range(per_partition):
            producer.produce(topic, value=b"{}", key=str(i).encode(), partition=partition)
    assert producer.flush(10) == 0


@pytest.fixture
def consumer(topic):
    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS,
            "group.id": settings.PIPELINE_GROUP_ID,
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    consumer.assign([TopicPartition(topic, 0), TopicPartition(topic, 1)])
    yield consumer
    consumer.close()


def drain(consumer: Consumer, expected: int) -> int:
    seen = 0
    deadline = time.monotonic() + 20
    while seen < expected and time.monotonic() < deadline:
        seen += len([m for m in consumer.consume(500, timeout=0.5) if m.error() is None])
    return seen


def test_lag_is_what_the_broker_holds_past_the_position(topic, consumer):
    produce(topic, 30)
    watch = LagWatch(consumer, interval=0, stall_after=60)
    report = watch.check()
    assert report.lag == 60  # nothing fetched nor committed: all of it is behind
    assert report.partitions == {f"{topic}[0]": 30, f"{topic}[1]": 30}
    assert gauges().partition.labels(topic, "0")._value.get() == 30
    assert gauges().total._value.get() == 60

    assert drain(consumer, 60) == 60
    watch.observe(fetched=60)
    assert watch.check().lag == 0
    produce(topic, 5)  # new messages are lag until read
    assert watch.check().lag == 10
    assert not watch.check().stalled


def test_a_consumer_behind_that_fetches_nothing_reports_a_stall(
    topic, consumer, caplog, client, db
):
    produce(topic, 10)
    # a paused partition is fetched no more: the consumer sits behind, as on a broker whose
    # fetches come back empty
    consumer.pause(consumer.assignment())
    watch = LagWatch(consumer, interval=0, stall_after=1.5)
    assert not watch.observe(fetched=len(consumer.consume(100, timeout=0.3))).stalled
    assert client.get("/health/pipeline").json()["checks"]["pipeline"]["lag"] == 20

    time.sleep(1.6)
    with caplog.at_level(logging.ERROR, logger="pipeline.lag"):
        report = watch.observe(fetched=len(consumer.consume(100, timeout=0.1)))
    assert report.stalled and report.lag == 20
    assert "pipeline stalled: 20 message(s) behind" in caplog.text
    assert gauges().stalled._value.get() == 1
    health = client.get("/health/pipeline")
    assert health.status_code == 503
    assert health["Retry-After"]
    assert "stalled: 20 message(s) behind" in health.json()["checks"]["pipeline"]["error"]

    consumer.resume(consumer.assignment())
    assert drain(consumer, 20) == 20
    with caplog.at_level(logging.WARNING, logger="pipeline.lag"):
        report = watch.observe(fetched=20)
    assert not report.stalled and report.lag == 0
    assert "pipeline moving again" in caplog.text
    assert client.get("/health/pipeline").status_code == 200
    watch.forget()


def test_health_says_when_no_pipeline_reports(settings, unique_name, clean_redis, client, db):
    settings.PIPELINE_GROUP_ID = f"{unique_name}-nobody"
    answer = client.get("/health/pipeline")
    assert answer.status_code == 503
    assert "is the pipeline running?" in answer.json()["checks"]["pipeline"]["error"]
