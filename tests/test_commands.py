"""The management commands `make up` runs, against the real Kafka and MongoDB."""

from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

from core import kafka
from events.models import EventType
from rules.models import Rule
from subscriptions.models import Subscription


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_ensure_kafka_topics_creates_missing_topics_once(settings, unique_name):
    settings.KAFKA_TOPIC_EVENTS = f"{unique_name}.events"
    settings.KAFKA_TOPIC_DLQ = f"{unique_name}.dlq"
    settings.KAFKA_TOPIC_QUARANTINE = f"{unique_name}.quarantine"
    settings.KAFKA_PARTITIONS = 4

    first = run("ensure_kafka_topics")
    assert f"{unique_name}.events: created, 4 partition(s)" in first
    assert f"{unique_name}.quarantine: created, 1 partition(s)" in first

    second = run("ensure_kafka_topics")
    assert "created" not in second
    assert f"{unique_name}.events: exists, 4 partition(s)" in second
    names = [f"{unique_name}.events", f"{unique_name}.dlq", f"{unique_name}.quarantine"]
    assert kafka.partition_counts(names) == dict(zip(names, [4, 1, 1], strict=True))


def test_ensure_kafka_topics_adds_partitions_and_warns_when_asked_for_fewer(settings, unique_name):
    settings.KAFKA_TOPIC_EVENTS = f"{unique_name}.events"
    settings.KAFKA_PARTITIONS = 2
    run("ensure_kafka_topics")
    settings.KAFKA_PARTITIONS = 5
    assert f"{unique_name}.events: grown to 5 partitions, 5 partition(s)" in run(
        "ensure_kafka_topics"
    )
    assert kafka.partition_counts([settings.KAFKA_TOPIC_EVENTS]) == {settings.KAFKA_TOPIC_EVENTS: 5}
    settings.KAFKA_PARTITIONS = 3
    output = run("ensure_kafka_topics")
    assert "5 partition(s) (settings ask for 3; Kafka cannot remove partitions)" in output


def test_ensure_kafka_topics_sets_retention_from_settings(settings, unique_name):
    settings.KAFKA_TOPIC_EVENTS = f"{unique_name}.events"
    settings.KAFKA_TOPIC_DLQ = f"{unique_name}.dlq"
    settings.KAFKA_RETENTION_HOURS = 2
    settings.KAFKA_DLQ_RETENTION_HOURS = 48
    run("ensure_kafka_topics")
    assert kafka.topic_retention_ms(settings.KAFKA_TOPIC_EVENTS) == 2 * 3_600_000
    assert kafka.topic_retention_ms(settings.KAFKA_TOPIC_DLQ) == 48 * 3_600_000

    settings.KAFKA_RETENTION_HOURS = 5  # an existing topic follows a changed setting
    run("ensure_kafka_topics")
    assert kafka.topic_retention_ms(settings.KAFKA_TOPIC_EVENTS) == 5 * 3_600_000


def test_ensure_mongo_indexes_replaces_the_unique_index_on_the_id_alone(mongo_db):
    mongo_db.events.create_index("event_id", name="event_id_unique", unique=True)
    mongo_db.events.insert_one({"event_id": "1", "source": "/a"})
    run("ensure_mongo_indexes")
    assert "event_id_unique" not in mongo_db.events.index_information()
    mongo_db.events.insert_one({"event_id": "1", "source": "/b"})  # another producer's event
    assert mongo_db.events.count_documents({"event_id": "1"}) == 2


def test_ensure_mongo_indexes_is_idempotent(mongo_db):
    run("ensure_mongo_indexes")
    output = run("ensure_mongo_indexes")
    assert "events: event_key_unique" in output

    indexes = mongo_db.events.index_information()
    assert indexes["event_key_unique"]["unique"] is True
    assert indexes["event_key_unique"]["key"] == [("event_id", 1), ("source", 1)]
    assert "event_id_unique" not in indexes
    assert indexes["expires_at_ttl"]["expireAfterSeconds"] == 0
    assert indexes["type_time_severity"]["key"] == [
        ("type", 1),
        ("timestamp", -1),
        ("severity", -1),
    ]
    assert indexes["event_text"]["key"] == [("_fts", "text"), ("_ftsx", 1)]
    rollups = mongo_db.metrics.index_information()
    assert rollups["metric_period_start_dims_code_unique"]["unique"] is True
    # retired: the per-minute-by-type rollups, and the rollups' key before it had a code
    assert not {"minute_type_unique", "metric_period_start_dims_unique"} & set(rollups)


@pytest.mark.django_db
def test_seed_demo_creates_an_admin_and_data_and_can_run_twice():
    assert "admin / admin" in run("seed_demo")
    assert "password unchanged" in run("seed_demo")

    admin = get_user_model().objects.get(username="admin")
    assert admin.is_superuser and admin.groups.filter(name="admin").exists()
    assert EventType.objects.count() == 3
    assert Subscription.objects.get().secrets.count() == 1
    assert Rule.objects.count() == 1
    for event_type in EventType.objects.all():
        event_type.full_clean()  # demo examples satisfy their schemas


@pytest.mark.django_db
def test_no_model_change_lacks_a_migration():
    run("makemigrations", "--check", "--dry-run")
