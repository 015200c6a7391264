"""The gRPC front door against the real services: roles, validation, batches, streams, reads."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import grpc
import pytest
from django.conf import settings

from core import kafka, mongo
from core.documents import event_document
from events.grpc_api import eventhub_pb2 as pb
from tests.helpers import find_in_topic

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("event_type", "clean_redis"),
]


def metadata(headers: dict[str, str]) -> list[tuple[str, str]]:
    value = headers.get("HTTP_AUTHORIZATION")
    return [("authorization", value)] if value else []


def good_event(**overrides) -> pb.Event:
    fields = {
        "event_type": "payment.failed",
        "user_id": "u-1",
        "amount": 3.5,
        "data_json": json.dumps({"currency": "EUR"}),
        **overrides,
    }
    return pb.Event(**fields)


# The roles of every method: tests/test_role_matrix.py.


def test_create_event_reaches_kafka_with_an_api_key(stub, writer_key):
    result = stub.CreateEvent(
        pb.CreateEventRequest(event=good_event(user_id="u-grpc")),
        metadata=[("x-api-key", writer_key)],
    )
    assert result.status == "accepted"
    (message,) = find_in_topic(settings.KAFKA_TOPIC_EVENTS, {result.id})[result.id]
    envelope = json.loads(message.value())
    assert envelope["subject"] == "u-grpc"
    assert envelope["data"] == {"currency": "EUR", "amount": 3.5}


def test_a_cloudevent_and_its_duplicate(stub, writer_key):
    event = pb.Event(
        specversion="1.0",
        id=f"g-{uuid.uuid4()}",
        source="/grpc",
        type="payment.failed",
        data_json=json.dumps({"amount": 1, "currency": "USD"}),
    )
    md = [("authorization", f"Bearer {writer_key}")]
    first = stub.CreateEvent(pb.CreateEventRequest(event=event), metadata=md)
    again = stub.CreateEvent(pb.CreateEventRequest(event=event), metadata=md)
    assert first.id == again.id == event.id and again.status == "accepted"
    assert len(find_in_topic(settings.KAFKA_TOPIC_EVENTS, {event.id})[event.id]) == 1


def test_an_invalid_event_is_invalid_argument_naming_the_pointer(stub, writer_key):
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateEvent(
            pb.CreateEventRequest(event=good_event(amount=-1)), metadata=[("x-api-key", writer_key)]
        )
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "/data/amount" in caught.value.details()
    errors = json.loads(dict(caught.value.trailing_metadata())["errors"])
    assert errors[0]["pointer"] == "/data/amount"


def test_a_batch_answers_each_item(stub, writer_key):
    duplicate = pb.Event(
        specversion="1.0",
        id=f"b-{uuid.uuid4()}",
        source="/g",
        type="payment.failed",
        data_json=json.dumps({"amount": 1, "currency": "EUR"}),
    )
    events = [
        good_event(),
        good_event(event_type="no.such"),
        duplicate,
        duplicate,
        good_event(data_json="{broken"),
    ]
    response = stub.CreateEvents(
        pb.CreateEventsRequest(events=events), metadata=[("x-api-key", writer_key)]
    )
    assert [r.status for r in response.results] == [
        "accepted",
        "invalid",
        "accepted",
        "duplicate",
        "invalid",
    ]
    assert (response.accepted, response.duplicates, response.invalid) == (2, 1, 2)
    assert response.results[4].errors[0].pointer == "/data_json"


def test_a_stream_acks_every_event_in_order(stub, writer_key):
    requests = [
        pb.StreamRequest(event=good_event(amount=float(i)), sequence=100 + i) for i in range(5)
    ]
    requests.insert(2, pb.StreamRequest(event=good_event(amount=-5), sequence=999))
    acks = list(stub.StreamEvents(iter(requests), metadata=[("x-api-key", writer_key)]))
    assert [a.sequence for a in acks] == [100, 101, 999, 102, 103, 104]
    assert [a.status for a in acks] == ["accepted"] * 2 + ["invalid"] + ["accepted"] * 3
    ids = {a.id for a in acks if a.status == "accepted"}
    assert set(find_in_topic(settings.KAFKA_TOPIC_EVENTS, ids)) == ids


def test_get_events_reads_mongodb(stub, credentials, mongo_db):
    now = datetime.now(tz=UTC)
    documents = [
        event_document(
            {
                "id": f"r-{i}",
                "source": "/s",
                "type": "payment.failed",
                "time": now.isoformat(),
                "subject": "ann",
                "data": {"amount": i},
            },
            retention_days=1,
        )
        for i in range(3)
    ]
    mongo_db[mongo.EVENTS].insert_many(documents)
    response = stub.GetEvents(
        pb.GetEventsRequest(type="payment.failed", limit=2),
        metadata=metadata(credentials["reader"]),
    )
    assert len(response.events) == 2 and response.next_cursor
    rest = stub.GetEvents(
        pb.GetEventsRequest(type="payment.failed", limit=2, cursor=response.next_cursor),
        metadata=metadata(credentials["reader"]),
    )
    ids = {e.id for e in response.events} | {e.id for e in rest.events}
    assert ids == {"r-0", "r-1", "r-2"}
    assert json.loads(rest.events[0].data_json)["amount"] in (0, 1, 2)


def test_broker_down_is_unavailable_with_retry_after(
    stub, writer_key, settings, free_port, fresh_kafka_clients
):
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{free_port}"
    settings.KAFKA_MESSAGE_TIMEOUT_MS = 500
    try:
        with pytest.raises(grpc.RpcError) as caught:
            stub.CreateEvent(
                pb.CreateEventRequest(event=good_event()), metadata=[("x-api-key", writer_key)]
            )
    finally:
        kafka.reset_clients()
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert int(dict(caught.value.trailing_metadata())["retry-after"]) > 0


def test_a_forged_token_is_unauthenticated_with_a_sentence(stub, credentials):
    with pytest.raises(grpc.RpcError) as caught:
        stub.GetEvents(pb.GetEventsRequest(), metadata=metadata(credentials["forged"]))
    assert caught.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert caught.value.details().startswith("Given token not valid for any token type: Token is")
