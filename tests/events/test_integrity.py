"""Integrity of the core path with what real producers send, through the public doors and the
real services: an event is its source and id together, and no event can stop the pipeline.

Each bad event is published between good ones; the good ones must arrive at the webhook
receiver with their own bodies, and the pipeline must move on.
"""

from __future__ import annotations

import json
import uuid

import grpc
import pytest
from confluent_kafka import Producer
from django.conf import settings
from standardwebhooks.webhooks import Webhook

from core import kafka, mongo
from events.grpc_api import eventhub_pb2 as pb
from events.registry import registry
from pipeline.consumer import PipelineConsumer
from subscriptions.services import subscription_add_secret
from tests.events.factories import EventTypeFactory
from tests.helpers import Receiver, find_in_topic
from tests.subscriptions.factories import SubscriptionFactory
from webhooks.models import Delivery
from webhooks.sender import reset_sender

pytestmark = pytest.mark.django_db(transaction=True)

BIG = 123456789012345678901234567890  # valid JSON, valid against {"type": "object"}


def nested(depth: int) -> dict:
    value: dict = {}
    for _ in range(depth - 1):
        value = {"x": value}
    return value


@pytest.fixture
def topics(settings, unique_name, clean_redis):
    settings.KAFKA_TOPIC_EVENTS = f"{unique_name}.events"
    settings.KAFKA_TOPIC_QUARANTINE = f"{unique_name}.quarantine"
    settings.PIPELINE_GROUP_ID = f"{unique_name}-pipeline"
    kafka.ensure_topics(
        [
            kafka.TopicSpec(settings.KAFKA_TOPIC_EVENTS, 3),
            kafka.TopicSpec(settings.KAFKA_TOPIC_QUARANTINE, 1),
        ]
    )


@pytest.fixture
def types(db):
    for name in ("order.created", "invoice.paid"):
        EventTypeFactory(name=name, schema={"type": "object"}, example={})
    registry.invalidate()
    yield
    registry.invalidate()


@pytest.fixture
def receiver():
    reset_sender()
    server = Receiver()
    yield server
    server.close()
    reset_sender()


def subscribe(receiver: Receiver, path: str, types: list[str]) -> str:
    subscription = SubscriptionFactory(url=receiver.url(path), event_types=types)
    return subscription_add_secret(subscription=subscription)


def publish(client, key: str, body, *, url: str = "/api/v1/events"):
    data = body if isinstance(body, str | bytes) else json.dumps(body)
    return client.post(url, data, content_type="application/cloudevents+json", HTTP_X_API_KEY=key)


def event(source: str, event_id: str | None = None, type_: str = "order.created", **data):
    return {
        "specversion": "1.0",
        "id": event_id or str(uuid.uuid4()),
        "source": source,
        "type": type_,
        "data": data,
    }


def run_pipeline(expected: int) -> int:
    return PipelineConsumer(batch_timeout_ms=100).run(max_events=expected, idle_exit_seconds=10)


def bodies(receiver: Receiver, path: str, secret: str, count: int) -> list[dict]:
    return [
        Webhook(secret).verify(r.body, r.headers)
        for r in receiver.wait_for(count, path=path, timeout=20)
    ]


# --- 1. one event key: source + id --------------------------------------------------------------


def test_the_same_id_from_two_sources_is_two_events_end_to_end(
    client, writer_key, credentials, topics, types, receiver, mongo_db, eager_tasks
):
    shop_secret = subscribe(receiver, "/shop", ["order.created"])
    billing_secret = subscribe(receiver, "/billing", ["invoice.paid"])
    all_secret = subscribe(receiver, "/all", ["order.created", "invoice.paid"])
    shared = f"1001-{uuid.uuid4().hex[:6]}"  # short ids such as order numbers collide
    before = event("/before", total=1)
    shop = event("/shop", shared, total=5)
    billing = event("/billing", shared, "invoice.paid", amount=7)
    after = event("/after", total=2)
    for body in (before, shop, billing, after):
        assert publish(client, writer_key, body).json()["status"] == "accepted"
    # the same source + id again is the same event: the first answer again, nothing published
    again = publish(client, writer_key, json.dumps([shop]), url="/api/v1/events/batch")
    assert again.json()["results"][0]["status"] == "duplicate"

    assert run_pipeline(4) == 4
    stored = mongo_db[mongo.EVENTS].find({"event_id": shared}, {"source": 1, "payload": 1})
    assert {(d["source"], json.dumps(d["payload"])) for d in stored} == {
        ("/shop", '{"total": 5}'),
        ("/billing", '{"amount": 7}'),
    }

    # each subscription gets each event once, with its own body
    (to_shop,) = [b for b in bodies(receiver, "/shop", shop_secret, 3) if b["id"] == shared]
    assert (to_shop["source"], to_shop["type"], to_shop["data"]) == shop_fields(shop)
    (to_billing,) = bodies(receiver, "/billing", billing_secret, 1)
    assert (to_billing["source"], to_billing["type"], to_billing["data"]) == shop_fields(billing)
    to_all = [b for b in bodies(receiver, "/all", all_secret, 4) if b["id"] == shared]
    assert sorted(
        (b["source"], b["data"].get("total"), b["data"].get("amount")) for b in to_all
    ) == [
        ("/billing", None, 7),
        ("/shop", 5, None),
    ]
    assert len(receiver.received) == 3 + 1 + 4  # nothing sent twice
    rows = set(Delivery.objects.filter(event_id=shared).values_list("event_source", "status"))
    assert rows == {("/shop", "succeeded"), ("/billing", "succeeded")}
    assert Delivery.objects.filter(event_id=shared).count() == 1 + 1 + 2

    # reads address an event unambiguously
    ambiguous = client.get(f"/api/v1/events/{shared}", HTTP_X_API_KEY=writer_key)
    assert ambiguous.status_code == 409
    assert ambiguous["Content-Type"] == "application/problem+json"
    assert ambiguous.json()["sources"] == ["/billing", "/shop"]
    one = client.get(f"/api/v1/events/{shared}?source=/shop", HTTP_X_API_KEY=writer_key)
    assert one.status_code == 200 and one.json()["data"] == {"total": 5}
    assert (
        client.get(f"/api/v1/events/{shared}?source=/nope", HTTP_X_API_KEY=writer_key).status_code
        == 404
    )
    assert client.get(f"/api/v1/events/{after['id']}", HTTP_X_API_KEY=writer_key).status_code == 200
    query = f'{{ event(id: "{shared}", source: "/billing") {{ source data }} }}'
    answer = client.post(
        "/graphql",
        json.dumps({"query": query}),
        content_type="application/json",
        **credentials["reader"],
    ).json()
    assert answer["data"]["event"] == {"source": "/billing", "data": {"amount": 7}}
    unnamed = client.post(
        "/graphql",
        json.dumps({"query": f'{{ event(id: "{shared}") {{ source }} }}'}),
        content_type="application/json",
        **credentials["reader"],
    ).json()
    assert unnamed["errors"][0]["extensions"]["code"] == "AMBIGUOUS"


def shop_fields(envelope: dict) -> tuple:
    return envelope["source"], envelope["type"], envelope["data"]


# --- 2-4. what cannot be stored or parsed is refused at every door ------------------------------

UNSTORABLE = [
    pytest.param({"v": BIG}, "/data/v", "beyond 64 bits", id="integer-beyond-64-bits"),
    pytest.param({"n": -BIG}, "/data/n", "beyond 64 bits", id="negative-beyond-64-bits"),
    pytest.param({"a\u0000b": 1}, "/data/a\u0000b", "NUL", id="nul-in-a-key"),
    pytest.param({"l": [{"k\u0000": 1}]}, "/data/l/0/k\u0000", "NUL", id="nul-in-a-nested-key"),
    pytest.param({"deep": nested(70)}, "/data/deep", "deeper than 64 levels", id="too-deep"),
]


@pytest.mark.parametrize(("data", "pointer", "detail"), UNSTORABLE)
def test_rest_refuses_what_mongodb_cannot_store_naming_the_pointer(
    client, writer_key, topics, types, data, pointer, detail
):
    response = publish(client, writer_key, event("/p", **data))
    assert response.status_code == 422, response.content
    assert response["Content-Type"] == "application/problem+json"
    (error,) = response.json()["errors"]
    assert error["pointer"].startswith(pointer) and detail in error["detail"]

    batch = [event("/p", total=1), event("/p", **data), event("/p", total=2)]
    answer = publish(client, writer_key, json.dumps(batch), url="/api/v1/events/batch")
    assert answer.status_code == 200, answer.content
    statuses = [item["status"] for item in answer.json()["results"]]
    assert statuses == ["accepted", "invalid", "accepted"]
    assert answer.json()["results"][1]["errors"][0]["pointer"].startswith(pointer)


@pytest.mark.parametrize(("data", "pointer", "detail"), UNSTORABLE)
def test_graphql_refuses_what_mongodb_cannot_store(
    client, credentials, topics, types, data, pointer, detail
):
    mutation = "mutation($input: PublishEventInput!) { publishEvent(input: $input) { id status } }"
    body = {"query": mutation, "variables": {"input": {"type": "order.created", "data": data}}}
    result = client.post(
        "/graphql", json.dumps(body), content_type="application/json", **credentials["writer"]
    ).json()
    (problem,) = result["errors"]
    assert problem["extensions"]["code"] == "INVALID_EVENT"
    assert problem["extensions"]["errors"][0]["pointer"].startswith(pointer)


@pytest.mark.parametrize(("data", "pointer", "detail"), UNSTORABLE)
def test_grpc_refuses_what_mongodb_cannot_store(
    stub, writer_key, topics, types, data, pointer, detail
):
    proto = pb.Event(
        specversion="1.0", id="g1", source="/g", type="order.created", data_json=json.dumps(data)
    )
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateEvent(pb.CreateEventRequest(event=proto), metadata=[("x-api-key", writer_key)])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    errors = json.loads(dict(caught.value.trailing_metadata())["errors"])
    assert errors[0]["pointer"].startswith(pointer)


NOT_JSON = [
    pytest.param('{"v": NaN}', id="NaN"),
    pytest.param('{"v": Infinity}', id="Infinity"),
    pytest.param('{"v": [-Infinity]}', id="-Infinity"),
    pytest.param("[" * 1000 + "]" * 1000, id="nested-1000-deep"),
    pytest.param('{"a":' * 5000 + "1" + "}" * 5000, id="nested-5000-deep"),
]


@pytest.mark.parametrize("data", NOT_JSON)
def test_non_json_numbers_and_unreadable_nesting_are_bad_requests(
    client, writer_key, credentials, stub, topics, types, data
):
    body = '{"specversion": "1.0", "id": "n1", "source": "/n", "type": "order.created", '
    body += f'"data": {data}}}'
    for url in ("/api/v1/events", "/api/v1/events/async"):
        response = publish(client, writer_key, body, url=url)
        assert response.status_code == 400, response.content
        assert response["Content-Type"] == "application/problem+json"
        assert "not valid JSON" in response.json()["detail"]
    batch = publish(client, writer_key, f"[{body}]", url="/api/v1/events/batch")
    assert batch.status_code == 400

    graphql = (
        '{"query": "mutation($input: PublishEventInput!) { publishEvent(input: $input) { id } }", '
        f'"variables": {{"input": {{"type": "order.created", "data": {data}}}}}}}'
    )
    answer = client.post(
        "/graphql", graphql, content_type="application/json", **credentials["writer"]
    )
    assert answer.status_code == 400
    assert "invalid JSON" in answer.json()["errors"][0]["message"]

    proto = pb.Event(specversion="1.0", id="g1", source="/g", type="order.created", data_json=data)
    with pytest.raises(grpc.RpcError) as caught:
        stub.CreateEvent(pb.CreateEventRequest(event=proto), metadata=[("x-api-key", writer_key)])
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "/data_json" in caught.value.details()


# --- what reaches the topic by other ways never stops the pipeline ------------------------------


def raw(event_id: str, data: str) -> bytes:
    return (
        f'{{"specversion":"1.0","id":"{event_id}","source":"/raw","type":"order.created",'
        f'"data":{data}}}'
    ).encode()


def send(producer: Producer, event_id: str, data: str) -> None:
    # one key: one partition, so every bad message sits in front of good ones
    topic = settings.KAFKA_TOPIC_EVENTS
    headers = [("ce_id", event_id.encode())]
    producer.produce(topic, raw(event_id, data), key=b"k", headers=headers)


def test_events_no_door_would_take_are_quarantined_and_the_others_delivered(
    topics, types, receiver, mongo_db, eager_tasks
):
    """Written straight to the topic (another producer, an old version): one of these stopped
    every delivery before, retried forever."""
    secret = subscribe(receiver, "/hook", ["order.created"])
    tag = uuid.uuid4().hex[:8]
    bad = {
        f"{tag}-big": str(BIG),
        f"{tag}-nul": '{"a\\u0000b": 1}',
        f"{tag}-nan": '{"v": NaN}',
        f"{tag}-inf": "[Infinity]",
        f"{tag}-deep": json.dumps(nested(70)),
        f"{tag}-unreadable": "[" * 5000 + "]" * 5000,
    }
    producer = Producer(kafka.base_config())
    good = []
    for n, (event_id, data) in enumerate(bad.items()):
        good_id = f"{tag}-good-{n}"
        good.append(good_id)
        send(producer, good_id, f'{{"n": {n}}}')
        send(producer, event_id, data)
    long_id = f"{tag}-{'l' * 1000}"  # as long as the envelope allows
    send(producer, long_id, '{"n": 98}')
    send(producer, f"{tag}-last", '{"n": 99}')
    good += [long_id, f"{tag}-last"]
    assert producer.flush(10) == 0

    assert run_pipeline(len(bad) + len(good)) == len(bad) + len(good)
    stored = {d["event_id"] for d in mongo_db[mongo.EVENTS].find({"source": "/raw"})}
    assert stored == set(good)
    received = bodies(receiver, "/hook", secret, len(good))
    assert sorted(b["id"] for b in received) == sorted(good)
    assert {b["id"]: b["data"]["n"] for b in received}[f"{tag}-last"] == 99

    quarantined = find_in_topic(settings.KAFKA_TOPIC_QUARANTINE, set(bad))
    reasons = {
        i: dict(m[0].headers())["x-quarantine-reason"].decode() for i, m in quarantined.items()
    }
    assert "beyond 64 bits" in reasons[f"{tag}-big"]
    assert "NUL" in reasons[f"{tag}-nul"]
    assert "not a JSON number" in reasons[f"{tag}-nan"]
    assert "not a JSON number" in reasons[f"{tag}-inf"]
    assert "deeper than 64 levels" in reasons[f"{tag}-deep"]
    assert "nests objects or arrays too deeply" in reasons[f"{tag}-unreadable"]
