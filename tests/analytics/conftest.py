"""Generated events whose analytics are known: stored as the pipeline stores them and counted
in the rollups as the pipeline counts them."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from analytics.rollups import rollups_add
from core import mongo
from core.documents import event_document

TYPES = ["order.created", "order.paid", "order.shipped", "payment.failed", "user.login"]
SOURCES = ["/shop", "/billing", "/auth"]
SUBJECTS = ["alice", "bob", "carol", "dave", None]


def generated_events(seed: int, count: int, *, now: datetime, span: timedelta) -> list[dict]:
    """Envelopes spread over ``span`` before ``now`` (distinct milliseconds), with amounts
    that are numbers, strings or absent, severities in every band or none, error codes as
    numbers and strings."""
    rng = random.Random(seed)
    offsets = rng.sample(range(1, int(span.total_seconds() * 1000)), count)
    envelopes = []
    for offset in offsets:
        data: dict = {}
        amount = rng.choice([None, 0, 1, 2.5, 1000, -3, "12", True])
        if amount is not None:
            data["amount"] = amount
        code = rng.choice([None, "E1", "E2", 500, 404])
        if code is not None:
            data[rng.choice(["error_code", "code"])] = code
        envelope = {
            "id": uuid.UUID(int=rng.getrandbits(128)).hex,
            "type": rng.choice(TYPES),
            "source": rng.choice(SOURCES),
            "time": (now - timedelta(milliseconds=offset)).isoformat(),
            "data": data,
        }
        subject = rng.choice(SUBJECTS)
        if subject is not None:
            envelope["subject"] = subject
        severity = rng.choice([None, 1, 3, 4, 6, 7, 8, 9, 10])
        if severity is not None:
            envelope["severity"] = severity
        envelopes.append(envelope)
    return envelopes


@pytest.fixture
def store_generated(mongo_db):
    """Store generated events and count them in the rollups; returns their documents."""

    def store(seed: int, count: int, *, span=timedelta(days=3), now=None) -> list[dict]:
        now = now or datetime.now(tz=UTC)
        documents = [
            event_document(envelope, retention_days=30)
            for envelope in generated_events(seed, count, now=now, span=span)
        ]
        mongo_db[mongo.EVENTS].insert_many(documents)
        assert rollups_add(documents) == len(documents)
        return documents

    return store
