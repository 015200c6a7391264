"""Fixtures of the webhook tests: a real HTTP receiver (tests.helpers.Receiver), a DLQ topic of
the test's own, a sender made with each test's settings."""

from __future__ import annotations

import pytest

from core import kafka
from tests.helpers import Receiver
from webhooks.sender import reset_sender


@pytest.fixture
def receiver():
    server = Receiver()
    yield server
    server.close()


@pytest.fixture
def dlq_topic(settings, unique_name):
    settings.KAFKA_TOPIC_DLQ = f"{unique_name}.dlq"
    kafka.ensure_topics([kafka.TopicSpec(settings.KAFKA_TOPIC_DLQ, 1)])
    return settings.KAFKA_TOPIC_DLQ


@pytest.fixture(autouse=True)
def fresh_sender():
    """Each test gets a sender made with its own settings."""
    reset_sender()
    yield
    reset_sender()
