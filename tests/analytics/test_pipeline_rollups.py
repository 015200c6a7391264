"""The pipeline's rollups are exact under at-least-once: replays, concurrent consumers of one
batch, and a batch that fails after its events were counted."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from analytics import rollups, selectors
from analytics.windows import Window
from core import mongo
from pipeline import batch as batches
from tests.pipeline.test_batch import StandIn, messages, payments, pool, queued  # noqa: F401
from tests.subscriptions.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db(transaction=True)


NOW = datetime.now(tz=UTC).replace(second=30, microsecond=0)


def recent(count: int, **kwargs):
    """Messages of events from the current minute (older rollups expire, see below)."""
    return messages(count, time=NOW.isoformat(), **kwargs)


def counted(db) -> dict[str, int]:
    """Events counted per period, all dimensions together."""
    rows = db[mongo.METRICS].aggregate(
        [
            {"$match": {"metric": "events"}},
            {"$group": {"_id": "$period", "n": {"$sum": "$value"}}},
        ]
    )
    return {row["_id"]: row["n"] for row in rows}


def test_a_replayed_batch_counts_once(payments, mongo_db, queued, pool):  # noqa: F811
    SubscriptionFactory(event_types=["payment.failed"])
    batch = recent(batches.CHUNK + 11, amount=lambda i: i % 5)
    batches.process_batch(batch, batches.Configuration(), mirror_pool=pool)
    expected = {period: len(batch) for period in rollups.PERIODS}
    assert counted(mongo_db) == expected
    for _ in range(2):
        batches.process_batch(batch, batches.Configuration(), mirror_pool=pool)
    assert counted(mongo_db) == expected
    rows = list(mongo_db[mongo.METRICS].find({"metric": "events", "period": "1m"}))
    assert sum(row["amount_sum"] for row in rows) == sum(i % 5 for i in range(len(batch)))
    assert {(row["type"], row["source"], row["band"]) for row in rows} == {
        ("payment.failed", "/batch", "none")
    }
    when = NOW.replace(second=0)
    answer = selectors.summary(Window(when, when + timedelta(minutes=1)))
    assert answer["total"] == len(batch)


def test_rollups_past_their_retention_are_not_written(payments, mongo_db, queued, pool):  # noqa: F811
    old = NOW - timedelta(days=20)  # the 1m and 5m rollups of that time have expired
    batches.process_batch(messages(50, time=old.isoformat()), batches.Configuration())
    assert counted(mongo_db) == {"1h": 50, "1d": 50}
    # read from the stored events instead
    window = Window(old - timedelta(minutes=1), old + timedelta(minutes=1))
    assert selectors.summary(window)["total"] == 50


def test_two_consumers_with_one_batch_count_it_once(payments, mongo_db, queued):  # noqa: F811
    batch = recent(900)

    def consume() -> None:
        try:
            batches.process_batch(batch, batches.Configuration())
        finally:
            connection.close()  # the thread's own connection

    with ThreadPoolExecutor(max_workers=2) as threads:
        for future in [threads.submit(consume) for _ in range(2)]:
            future.result()
    assert counted(mongo_db) == {period: len(batch) for period in rollups.PERIODS}


def test_a_batch_that_fails_after_counting_counts_once_when_replayed(
    payments,  # noqa: F811
    mongo_db,
    queued,  # noqa: F811
    pool,  # noqa: F811
    monkeypatch,
):
    batch = recent(300)
    failures = []

    def enqueue_fails(rows):
        failures.append(rows)
        raise ConnectionError("PostgreSQL went away before the commit")

    monkeypatch.setattr(batches, "deliveries_enqueue_on_commit", enqueue_fails)
    with pytest.raises(ConnectionError):
        batches.process_batch(batch, batches.Configuration(), mirror_pool=pool)
    assert failures and counted(mongo_db)["1m"] == len(batch)  # counted, then failed
    monkeypatch.setattr(batches, "deliveries_enqueue_on_commit", lambda rows: None)
    batches.process_batch(batch, batches.Configuration(), mirror_pool=pool)
    assert counted(mongo_db) == {period: len(batch) for period in rollups.PERIODS}


def test_a_batch_that_fails_before_counting_counts_once_when_replayed(
    payments,  # noqa: F811
    mongo_db,
    queued,  # noqa: F811
    pool,  # noqa: F811
    monkeypatch,
):
    batch = recent(CHUNK_AND_A_BIT := batches.CHUNK + 3)
    real = batches.rollups_count_batch

    def counting_fails(documents, duplicates):
        raise ConnectionError("MongoDB went away after storing the events")

    monkeypatch.setattr(batches, "rollups_count_batch", counting_fails)
    with pytest.raises(ConnectionError):
        batches.process_batch(batch, batches.Configuration(), mirror_pool=pool)
    assert mongo_db[mongo.EVENTS].count_documents({}) == CHUNK_AND_A_BIT  # stored, uncounted
    monkeypatch.setattr(batches, "rollups_count_batch", real)
    batches.process_batch(batch, batches.Configuration(), mirror_pool=pool)  # the retry
    batches.process_batch(batch, batches.Configuration(), mirror_pool=pool)  # and a replay
    assert counted(mongo_db) == {period: CHUNK_AND_A_BIT for period in rollups.PERIODS}


def test_the_same_event_in_another_message_is_not_counted_again(payments, mongo_db, queued):  # noqa: F811
    first = recent(20)
    batches.process_batch(first, batches.Configuration())
    # a producer sends the same 20 events again: new messages (offsets 20-39), same keys
    again = [StandIn(m.value(), m.offset() + 20) for m in first]
    batches.process_batch(again, batches.Configuration())
    assert mongo_db[mongo.EVENTS].count_documents({}) == 20
    assert counted(mongo_db) == {period: 20 for period in rollups.PERIODS}
    # and new events after them are counted
    batches.process_batch(
        [StandIn(m.value(), 40 + i) for i, m in enumerate(recent(5))], batches.Configuration()
    )
    assert counted(mongo_db)["1m"] == 25
