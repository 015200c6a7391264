"""Fixtures of the pipeline's tests."""

from __future__ import annotations

import pytest

from core import kafka


@pytest.fixture
def topic(settings, unique_name, clean_redis):
    """An events topic of two partitions and a consumer group, the test's own."""
    settings.KAFKA_TOPIC_EVENTS = f"{unique_name}.events"
    settings.PIPELINE_GROUP_ID = f"{unique_name}-pipeline"
    kafka.ensure_topics([kafka.TopicSpec(settings.KAFKA_TOPIC_EVENTS, 2)])
    return settings.KAFKA_TOPIC_EVENTS
