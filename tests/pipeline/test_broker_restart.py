"""A Kafka broker killed and restarted in the middle of a stream loses nothing.

The test starts a broker of its own (scripts/services.py on free ports, in a temporary
folder), so the suite's shared broker is never stopped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
from confluent_kafka import Consumer, TopicPartition
from django.conf import settings

from core import kafka, mongo
from events.services import BrokerUnavailable, Door, events_publish
from pipeline.consumer import PipelineConsumer
from tests.events.factories import EventTypeFactory
from tests.helpers import pipeline_env
from tests.subscriptions.factories import SubscriptionFactory
from webhooks.models import Delivery

ROOT = Path(__file__).resolve().parent.parent.parent
PARTITIONS = 3

pytestmark = pytest.mark.django_db(transaction=True)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Broker:
    """A throwaway Kafka started, killed and restarted through scripts/services.py."""

    def __init__(self, folder: Path) -> None:
        self.bootstrap = f"127.0.0.1:{_free_port()}"
        self.folder = folder
        self.env = {
            **os.environ,
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "KAFKA_CONTROLLER_PORT": str(_free_port()),
            "EVENTHUB_SERVICES_DIR": str(folder),
        }

    def _services(self, action: str) -> str:
        result = subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "services.py"), action, "kafka"],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        return result.stdout

    def start(self) -> None:
        self._services("start")

    def stop(self) -> None:
        self._services("stop")

    def kill(self) -> None:
        """SIGKILL: no controlled shutdown, no flush; then wait until it is gone."""
        pid = int((self.folder / "kafka.pid").read_text())
        os.kill(pid, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        (self.folder / "kafka.pid").unlink(missing_ok=True)


@pytest.fixture
def broker(tmp_path, settings, unique_name, clean_redis):
    own = Broker(tmp_path)
    own.start()
    kafka.reset_clients()
    settings.KAFKA_BOOTSTRAP_SERVERS = own.bootstrap
    settings.KAFKA_TOPIC_EVENTS = f"{unique_name}.events"
    settings.PIPELINE_GROUP_ID = f"{unique_name}-pipeline"
    settings.KAFKA_MESSAGE_TIMEOUT_MS = 3000
    kafka.ensure_topics([kafka.TopicSpec(settings.KAFKA_TOPIC_EVENTS, PARTITIONS)])
    yield own
    kafka.reset_clients()
    own.stop()


def publish(count: int, tag: str) -> list[str]:
    """Publish ``count`` events synchronously (acks=all) in batches; the ids accepted."""
    accepted = []
    for start in range(0, count, 50):
        envelopes = [
            {
                "id": f"{tag}-{i}",
                "source": "/restart",
                "specversion": "1.0",
                "type": "order.created",
                "subject": f"user-{i % 7}",
                "data": {"n": i},
            }
            for i in range(start, min(count, start + 50))
        ]
        outcomes = events_publish(
            envelopes=envelopes, wait=True, door=Door.REST, request_id="restart"
        )
        accepted += [o.id for o in outcomes if o.status == "accepted"]
    return accepted


def group_position(group: str, topic: str) -> tuple[int, int]:
    """(sum of the group's committed offsets, sum of the high watermarks) of ``topic``."""
    consumer = Consumer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP_SERVERS, "group.id": group})
    try:
        partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
        committed = sum(max(tp.offset, 0) for tp in consumer.committed(partitions, timeout=10))
        high = sum(consumer.get_watermark_offsets(tp, timeout=10)[1] for tp in partitions)
    finally:
        consumer.close()
    return committed, high


def pipeline_process(log: Path) -> subprocess.Popen:
    """The pipeline command, its output in ``log``: a pipe nobody reads until the end would
    fill up with the client library's connection errors while the broker is down, and then
    block the process."""
    env = pipeline_env(KAFKA_BOOTSTRAP_SERVERS=settings.KAFKA_BOOTSTRAP_SERVERS)
    with log.open("wb") as output:
        return subprocess.Popen(
            [sys.executable, "manage.py", "consume_events", "--batch-size", "100"],
            cwd=ROOT,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
        )


def wait_for_mirror(collection, ids: list[str], timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        stored = collection.count_documents({"source": "/restart"})
        if stored >= len(ids):
            return stored
        time.sleep(0.2)
    return collection.count_documents({"source": "/restart"})


def test_a_broker_killed_mid_stream_loses_no_accepted_event(broker, mongo_db, db):
    EventTypeFactory(name="order.created", schema={"type": "object"})
    subscription = SubscriptionFactory(event_types=["order.created"])
    tag = uuid.uuid4().hex[:8]

    # accepted while no pipeline runs, then the broker dies without a chance to flush
    accepted = publish(400, f"{tag}-a")
    assert len(accepted) == 400
    broker.kill()

    # while it is down nothing is accepted (the API answers 503 with Retry-After)
    with pytest.raises(BrokerUnavailable):
        events_publish(
            envelopes=[
                {
                    "id": f"{tag}-down",
                    "source": "/restart",
                    "specversion": "1.0",
                    "type": "order.created",
                    "data": {},
                }
            ],
            wait=True,
            door=Door.REST,
            request_id="restart",
        )

    broker.start()
    log = broker.folder / "pipeline.log"
    pipeline = pipeline_process(log)
    try:
        accepted += publish(600, f"{tag}-b")  # the pipeline consumes while this goes on
        broker.kill()  # ...and loses its broker mid-stream
        broker.start()
        accepted += publish(600, f"{tag}-c")
        stored = wait_for_mirror(mongo_db[mongo.EVENTS], accepted)
    finally:
        pipeline.send_signal(signal.SIGTERM)
        pipeline.wait(timeout=60)
    output = log.read_text(errors="replace")
    assert pipeline.returncode == 0, output[-3000:]

    assert len(accepted) == 1600
    assert stored == len(accepted)  # every accepted event, each once
    documents = mongo_db[mongo.EVENTS].find({"source": "/restart"}, {"event_id": 1})
    assert {d["event_id"] for d in documents} == set(accepted)
    deliveries = set(
        Delivery.objects.filter(subscription=subscription).values_list("event_id", flat=True)
    )
    assert deliveries == set(accepted)

    # the group's offsets survive a restart too: the pipeline resumes where it committed
    committed, high = group_position(settings.PIPELINE_GROUP_ID, settings.KAFKA_TOPIC_EVENTS)
    assert committed == high == 1600
    broker.stop()
    broker.start()
    assert group_position(settings.PIPELINE_GROUP_ID, settings.KAFKA_TOPIC_EVENTS) == (1600, 1600)
    assert PipelineConsumer(batch_timeout_ms=100).run(idle_exit_seconds=3) == 0
