"""The whole path through real processes: the pipeline consumes Kafka and queues deliveries,
a real Celery worker (thread pool, queue ``webhooks``) sends them to a local receiver."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import pytest
from django.conf import settings
from standardwebhooks.webhooks import Webhook

from core import kafka, mongo
from core.documents import event_document
from eventhub.celery import app as celery_app
from events.registry import registry
from events.services import Door, events_publish
from pipeline.consumer import PipelineConsumer
from subscriptions.services import subscription_add_secret
from tests.events.factories import EventTypeFactory
from tests.helpers import Reply, database_url
from tests.subscriptions.factories import SubscriptionFactory
from tests.webhooks.test_delivery import pending
from webhooks.models import Delivery
from webhooks.services.queueing import deliveries_enqueue, deliveries_sweep

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.django_db(transaction=True)


class Worker:
    """A Celery worker of the ``webhooks`` queue in a subprocess, with the test settings."""

    def __init__(self, metrics_port: int = 0, threads: int = 8) -> None:
        self.name = f"test-webhooks-{uuid.uuid4().hex[:8]}@localhost"
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "tests.settings",
            "DATABASE_URL": database_url(),
            "TEST_MONGO_DB": settings.MONGO_DB,
            "WEBHOOK_LEASE_SECONDS": str(settings.WEBHOOK_LEASE_SECONDS),
            "WORKER_METRICS_PORT": str(metrics_port),
            "TEST_WEBHOOK_RECORD_IN_BACKGROUND": "true",
        }
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "celery", "-A", "eventhub", "worker"),
                *("--queues", "webhooks", "--pool", "threads", "--concurrency", str(threads)),
                *("--hostname", self.name, "--without-gossip", "--without-mingle"),
                *("--loglevel", "WARNING"),
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if celery_app.control.ping(destination=[self.name], timeout=0.5):
                return
        self.stop()
        raise AssertionError("the Celery worker did not start within 30 s")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(20)


@pytest.fixture
def start_worker():
    celery_app.control.purge()  # the test broker's queues: nothing left from earlier tests
    workers: list[Worker] = []

    def _start(**options) -> Worker:
        workers.append(Worker(**options))
        return workers[-1]

    yield _start
    for worker in workers:
        worker.stop(signal.SIGKILL)


@pytest.fixture
def topic(settings, unique_name, clean_redis):
    settings.KAFKA_TOPIC_EVENTS = f"{unique_name}.events"
    settings.PIPELINE_GROUP_ID = f"{unique_name}-pipeline"
    kafka.ensure_topics([kafka.TopicSpec(settings.KAFKA_TOPIC_EVENTS, 3)])
    EventTypeFactory(name="order.created", schema={"type": "object"})
    registry.invalidate()
    yield settings.KAFKA_TOPIC_EVENTS
    registry.invalidate()


def wait_until(check, timeout: float = 30) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return False


def test_published_events_reach_the_endpoint_through_the_worker(
    topic, mongo_db, receiver, start_worker, free_port
):
    subscription = SubscriptionFactory(url=receiver.url(), event_types=["order.*"])
    secret = subscription_add_secret(subscription=subscription)
    start_worker(metrics_port=free_port)
    envelopes = [
        {
            "id": str(uuid.uuid4()),
            "source": "/shop",
            "specversion": "1.0",
            "type": "order.created",
            "time": "2026-11-20T10:00:00Z",
            "data": {"n": i},
        }
        for i in range(30)
    ]
    outcomes = events_publish(envelopes=envelopes, wait=True, door=Door.REST, request_id="test")
    assert {o.status for o in outcomes} == {"accepted"}

    PipelineConsumer(batch_timeout_ms=100).run(max_events=30, idle_exit_seconds=15)

    received = receiver.wait_for(30, timeout=30)
    assert sorted(Webhook(secret).verify(r.body, r.headers)["data"]["n"] for r in received) == list(
        range(30)
    )
    assert wait_until(lambda: Delivery.objects.filter(status="succeeded").count() == 30)
    assert len(receiver.received) == 30  # each sent once
    # the worker's own metrics endpoint counts what it sent
    with urllib.request.urlopen(f"http://127.0.0.1:{free_port}/metrics", timeout=5) as response:
        metrics = response.read().decode()
    assert 'deliveries_total{outcome="succeeded"} 30.0' in metrics


def test_a_delivery_whose_worker_was_killed_mid_request_is_sent_again(
    settings, mongo_db, receiver, start_worker, django_capture_on_commit_callbacks
):
    settings.WEBHOOK_LEASE_SECONDS = 5
    subscription = SubscriptionFactory(url=receiver.url(), timeout_seconds=2)
    secret = subscription_add_secret(subscription=subscription)
    envelope = {
        "id": str(uuid.uuid4()),
        "source": "/shop",
        "type": "payment.failed",
        "time": "2026-11-20T10:00:00Z",
        "data": {"amount": 1},
    }
    mongo_db[mongo.EVENTS].insert_one(event_document(envelope, retention_days=1))
    receiver.reply("/hook", Reply(200, delay=1.5))  # the first request is slow...
    first = start_worker()
    delivery = pending(subscription, envelope["id"], source=envelope["source"])
    deliveries_enqueue([(delivery.pk, subscription.pk)])
    assert receiver.wait_for(1, timeout=20)
    first.stop(signal.SIGKILL)  # ...and its worker dies before the answer
    delivery.refresh_from_db()
    assert delivery.status == "in_flight"

    start_worker()
    # the claim lapses after the timeout (2 s) and the lease (5 s); the sweeper takes it back
    assert wait_until(lambda: deliveries_sweep() > 0, timeout=15)
    assert wait_until(
        lambda: Delivery.objects.filter(pk=delivery.pk, status="succeeded").exists(), timeout=20
    )
    first_request, second_request = receiver.received
    assert first_request.headers["webhook-id"] == second_request.headers["webhook-id"]
    Webhook(secret).verify(second_request.body, second_request.headers)


def test_a_slow_endpoint_does_not_hold_back_the_others(
    receiver, store_event, start_worker, django_capture_on_commit_callbacks
):
    slow = SubscriptionFactory(url=receiver.url("/slow"), timeout_seconds=5)
    fast = SubscriptionFactory(url=receiver.url("/fast"))
    for subscription in (slow, fast):
        subscription_add_secret(subscription=subscription)
    receiver.reply("/slow", *[Reply(200, delay=8)] * 6)  # never within the timeout
    start_worker(threads=2)  # fewer threads than slow batches
    slow_rows = [(pending(slow, store_event()).pk, slow.pk) for _ in range(6)]
    fast_rows = [(pending(fast, store_event()).pk, fast.pk) for _ in range(20)]

    with django_capture_on_commit_callbacks(execute=True):
        # six batches for the slow endpoint first, then the fast one's
        for row in slow_rows:
            deliveries_enqueue([row])
        deliveries_enqueue(fast_rows)

    started = time.monotonic()
    assert len(receiver.wait_for(20, path="/fast", timeout=10)) == 20
    assert time.monotonic() - started < 4  # not behind the slow batches' 5 s timeouts
    assert wait_until(lambda: Delivery.objects.filter(status="succeeded").count() == 20)
    assert wait_until(
        lambda: Delivery.objects.filter(subscription=slow, status="retrying").count() == 6,
        timeout=20,
    )
    assert set(
        Delivery.objects.filter(subscription=slow).values_list(
            "attempts_made__error_class", flat=True
        )
    ) == {"timeout"}
