"""The one mapping of an event's shapes: flat form -> envelope -> stored document -> filter
path, a test per mapped field (core.documents.MAPPING)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from core.documents import MAPPING, document_to_event, event_document
from events.envelope import from_flat
from querylang import compile_query

FLAT = {
    "event_id": "e-1",
    "source": "/billing",
    "event_type": "payment.failed",
    "user_id": "u-42",
    "timestamp": "2026-11-20T10:00:00Z",
    "severity": 7,
    "payload": {"currency": "EUR"},
    "amount": 12.5,
    "metadata": {"region": "eu"},
    "trace_id": "tr-1",
    "session_id": "se-1",
    "partition_key": "account-9",
}
STORED = {
    "event_id": "e-1",
    "source": "/billing",
    "type": "payment.failed",
    "user_id": "u-42",
    "timestamp": datetime(2026, 11, 20, 10, tzinfo=UTC),
    "severity": 7,
    "payload": {"currency": "EUR", "amount": 12.5},
    "metadata": {"region": "eu"},
    "trace_id": "tr-1",
    "session_id": "se-1",
    "partition_key": "account-9",
}


@pytest.fixture(scope="module")
def shapes():
    envelope = from_flat(FLAT, default_source="unused")
    return envelope, event_document(envelope, retention_days=1)


@pytest.mark.parametrize(("flat", "attribute", "stored"), MAPPING, ids=[m[0] for m in MAPPING])
def test_each_field_reaches_its_stored_name_and_its_filter_path(shapes, flat, attribute, stored):
    envelope, document = shapes
    assert document[stored] == STORED[stored]
    assert compile_query({stored: STORED[stored]})(document)  # a filter names the stored field
    assert not compile_query({stored: "something else"})(document)
    # ...and reads give the envelope attribute back
    assert document_to_event(document)[attribute] == envelope[attribute]


def test_subject_is_kept_under_both_names_and_amount_joins_the_payload(shapes):
    _, document = shapes
    assert document["subject"] == document["user_id"] == "u-42"
    assert compile_query({"subject": "u-42", "payload.amount": {"$gte": 10}})(document)


def test_the_partition_key_falls_back_to_the_subject():
    envelope = from_flat({"event_type": "t", "user_id": "u-7"}, default_source="/s")
    assert event_document(envelope, retention_days=1)["partition_key"] == "u-7"
