"""Generated and hostile JSON through the REST batch endpoint, into the real Kafka and MongoDB.

Every answer is a clear one (never a server error), and whatever ingest accepts, MongoDB stores
and strict JSON parsers read: integers beyond 64 bits, NUL in keys, NaN and Infinity and deep
nesting must be refused at the door, not found later by the pipeline or a webhook receiver.
"""

from __future__ import annotations

import json
import math
import uuid
from typing import Any

import bson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from core import mongo
from core.documents import event_document
from events.registry import registry
from pipeline.mirroring import mirror
from tests.events.factories import EventTypeFactory

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_redis")]


def nested(depth: int) -> Any:
    value: Any = 1
    for level in range(depth):
        value = {"x": value} if level % 2 else [value]
    return value


keys = st.text(max_size=4) | st.sampled_from(["a\x00b", "\x00", "$x", "a.b", "~/", ""])
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.sampled_from([2**63 - 1, -(2**63), 2**63, -(2**63) - 1])
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=6)
)
values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(keys, children, max_size=3),
    max_leaves=12,
)
payloads = st.one_of(
    st.dictionaries(keys, values, max_size=4),
    values,
    st.integers(min_value=1, max_value=120).map(nested),
)


def depth_of(value: Any) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


def finite(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(finite(v) for v in value.values())
    if isinstance(value, list):
        return all(finite(v) for v in value)
    return True


@pytest.fixture
def fuzz_type(db):
    EventTypeFactory(name="fuzz.event", schema={}, example={})
    registry.invalidate()
    yield
    registry.invalidate()


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(batch=st.lists(payloads, min_size=1, max_size=8))
def test_every_answer_is_clear_and_what_is_accepted_is_storable(
    client, writer_key, fuzz_type, mongo_db, batch
):
    envelopes = [
        {
            "specversion": "1.0",
            "id": str(uuid.uuid4()),
            "source": "/fuzz",
            "type": "fuzz.event",
            "time": "2026-12-01T10:00:00Z",
            "data": data,
        }
        for data in batch
    ]
    body = json.dumps(envelopes)  # NaN and Infinity come out as the non-JSON tokens
    response = client.post(
        "/api/v1/events/batch",
        body,
        content_type="application/cloudevents-batch+json",
        HTTP_X_API_KEY=writer_key,
    )
    assert response.status_code < 500, response.content
    if not all(finite(data) for data in batch):
        assert response.status_code == 400  # not JSON
        assert response["Content-Type"] == "application/problem+json"
        return
    assert response.status_code == 200, response.content
    results = response.json()["results"]
    assert len(results) == len(envelopes)
    accepted = []
    for envelope, result in zip(envelopes, results, strict=True):
        assert result["status"] in ("accepted", "invalid"), result
        if result["status"] == "invalid":
            assert result["errors"] and all(
                e["pointer"].startswith("/data") for e in result["errors"]
            )
            continue
        accepted.append(envelope)
        assert depth_of(envelope["data"]) <= 64
        json.dumps(envelope["data"], allow_nan=False)  # every JSON parser reads it
        bson.encode(event_document(envelope, retention_days=1))  # BSON holds it
    # ...and MongoDB stores it, as the pipeline does
    if accepted:
        mirror([event_document(e, retention_days=1) for e in accepted])
        stored = mongo_db[mongo.EVENTS].count_documents(
            {"event_id": {"$in": [e["id"] for e in accepted]}}
        )
        assert stored == len(accepted)
