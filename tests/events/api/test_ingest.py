"""Publishing over REST into the real Kafka broker: forms, validation, idempotency, outages."""

from __future__ import annotations

import json
import uuid

import pytest
from django.conf import settings

from core import kafka
from core.redis import get_redis
from events.services import (
    CLAIM_PENDING,
    SPOOL_KEY,
    _idempotency_key,
    claim_seconds,
    events_republish_spooled,
)
from tests.helpers import find_in_topic

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_type", "clean_redis")]

URL = "/api/v1/events"


def post(client, body, *, key, content_type="application/json", url=URL, **headers):
    data = body if isinstance(body, bytes | str) else json.dumps(body)
    return client.post(url, data, content_type=content_type, HTTP_X_API_KEY=key, **headers)


def flat(**overrides):
    return {
        "event_type": "payment.failed",
        "user_id": "u-1",
        "amount": 12.5,
        "data": {"currency": "EUR"},
        **overrides,
    }


def test_a_flat_event_reaches_kafka_as_a_cloudevent(client, writer_key):
    response = post(
        client, flat(severity=7, trace_id="tr-1"), key=writer_key, HTTP_X_REQUEST_ID="req-42"
    )
    assert response.status_code == 202, response.content
    event_id = response.json()["id"]
    assert response.json()["status"] == "accepted"

    (message,) = find_in_topic(settings.KAFKA_TOPIC_EVENTS, {event_id})[event_id]
    envelope = json.loads(message.value())
    assert envelope["type"] == "payment.failed"
    assert envelope["specversion"] == "1.0"
    assert envelope["subject"] == "u-1"
    assert envelope["data"] == {"currency": "EUR", "amount": 12.5}
    assert envelope["severity"] == 7 and envelope["traceid"] == "tr-1"
    assert envelope["source"].startswith("eventhub:key:ehk_")
    assert message.key() == b"u-1"  # partition key: the subject
    headers = dict(message.headers())
    assert headers["ce_type"] == b"payment.failed"
    assert headers["ce_specversion"] == b"1.0"
    assert headers["x-request-id"] == b"req-42"


def test_a_structured_cloudevent_keeps_its_attributes(client, writer_key):
    event_id = f"ce-{uuid.uuid4()}"
    body = {
        "specversion": "1.0",
        "id": event_id,
        "source": "/billing",
        "type": "payment.failed",
        "time": "2026-11-01T10:00:00+01:00",
        "partitionkey": "account-9",
        "data": {"amount": 3, "currency": "USD"},
    }
    response = post(client, body, key=writer_key, content_type="application/cloudevents+json")
    assert response.status_code == 202, response.content
    assert response.json()["id"] == event_id
    (message,) = find_in_topic(settings.KAFKA_TOPIC_EVENTS, {event_id})[event_id]
    envelope = json.loads(message.value())
    assert envelope["time"] == "2026-11-01T09:00:00Z"
    assert envelope["source"] == "/billing"
    assert message.key() == b"account-9"


def test_a_binary_mode_cloudevent_is_accepted(client, writer_key):
    event_id = f"bin-{uuid.uuid4()}"
    response = post(
        client,
        {"amount": 1, "currency": "EUR"},
        key=writer_key,
        HTTP_CE_SPECVERSION="1.0",
        HTTP_CE_ID=event_id,
        HTTP_CE_SOURCE="/shop",
        HTTP_CE_TYPE="payment.failed",
        HTTP_CE_SUBJECT="u-7",
    )
    assert response.status_code == 202, response.content
    (message,) = find_in_topic(settings.KAFKA_TOPIC_EVENTS, {event_id})[event_id]
    envelope = json.loads(message.value())
    assert (envelope["subject"], envelope["data"]) == ("u-7", {"amount": 1, "currency": "EUR"})


def test_schema_errors_name_the_json_pointer(client, writer_key):
    response = post(client, flat(amount=-5, data={"currency": "euro"}), key=writer_key)
    assert response.status_code == 422
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/invalid-event")
    pointers = {error["pointer"] for error in body["errors"]}
    assert pointers == {"/data/amount", "/data/currency"}


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"event_type": "no.such_type"}, "/type"),
        ({"user_id": "u"}, "/type"),
        (flat(severity=11), "/severity"),
        (flat(timestamp="yesterday"), "/time"),
        (flat(colour="red"), "/colour"),
        ({"specversion": "0.3", "type": "payment.failed"}, "/specversion"),
    ],
)
def test_bad_events_are_refused_with_a_pointer(client, writer_key, body, pointer):
    response = post(client, body, key=writer_key)
    assert response.status_code == 422, response.content
    assert pointer in [error["pointer"] for error in response.json()["errors"]]


def test_a_disabled_type_is_refused(client, writer_key, event_type):
    from events.registry import registry

    event_type.enabled = False
    event_type.save()
    registry.invalidate()
    response = post(client, flat(), key=writer_key)
    assert response.status_code == 422
    assert "disabled" in response.json()["errors"][0]["detail"]


def test_a_type_disabled_by_another_process_is_refused_within_the_bound(
    client, writer_key, event_type, settings
):
    import time

    from events.models import EventType
    from events.registry import registry

    settings.EVENT_TYPE_CACHE_SECONDS = 1.0
    registry.invalidate()
    assert post(client, flat(), key=writer_key).status_code == 202
    EventType.objects.filter(pk=event_type.pk).update(enabled=False)  # no word reaches us
    assert post(client, flat(), key=writer_key).status_code == 202, "remembered within the bound"
    time.sleep(1.1)
    assert post(client, flat(), key=writer_key).status_code == 422


def test_malformed_json_is_a_400_problem(client, writer_key):
    response = post(client, b"{not json", key=writer_key)
    assert response.status_code == 400
    assert response.json()["type"].endswith("/parse-error")
    assert "not valid JSON" in response.json()["detail"]


def test_a_body_over_the_limit_is_413(client, writer_key, settings):
    settings.INGEST_MAX_EVENT_BYTES = 2048
    response = post(client, flat(metadata={"pad": "x" * 4000}), key=writer_key)
    assert response.status_code == 413
    assert response.json()["type"].endswith("/payload-too-large")


def test_a_repeated_source_and_id_gives_the_first_answer_and_nothing_new(client, writer_key):
    body = flat(id=f"dup-{uuid.uuid4()}", source="/billing")
    first = post(client, body, key=writer_key)
    second = post(client, body, key=writer_key)
    assert first.status_code == second.status_code == 202
    assert first.json() == second.json()
    assert second["Idempotent-Replayed"] == "true"
    event_id = first.json()["id"]
    assert len(find_in_topic(settings.KAFKA_TOPIC_EVENTS, {event_id})[event_id]) == 1


def test_an_idempotency_key_replays_the_first_response(client, writer_key):
    first = post(client, flat(), key=writer_key, HTTP_IDEMPOTENCY_KEY="order-77")
    again = post(client, flat(), key=writer_key, HTTP_IDEMPOTENCY_KEY="order-77")
    assert again.status_code == 202 and again.json() == first.json()
    assert again["Idempotent-Replayed"] == "true"
    event_id = first.json()["id"]
    assert len(find_in_topic(settings.KAFKA_TOPIC_EVENTS, {event_id})[event_id]) == 1

    other = post(client, flat(amount=99), key=writer_key, HTTP_IDEMPOTENCY_KEY="order-77")
    assert other.status_code == 422
    assert other.json()["type"].endswith("/idempotency-key-reused")


def test_async_mode_answers_and_the_event_still_arrives(client, writer_key):
    response = post(client, flat(), key=writer_key, url=f"{URL}/async")
    assert response.status_code == 202
    event_id = response.json()["id"]
    assert find_in_topic(settings.KAFKA_TOPIC_EVENTS, {event_id}).get(event_id)
    assert post(client, flat(), key=writer_key, url=f"{URL}?mode=async").status_code == 202


def test_a_batch_answers_each_item(client, writer_key):
    duplicate = flat(id=f"b-{uuid.uuid4()}", source="/batch")
    items = [flat(), {"event_type": "nope"}, duplicate, duplicate, "not an object", flat(amount=-1)]
    response = post(client, items, key=writer_key, url=f"{URL}/batch")
    assert response.status_code == 200, response.content
    body = response.json()
    statuses = [result["status"] for result in body["results"]]
    assert statuses == ["accepted", "invalid", "accepted", "duplicate", "invalid", "invalid"]
    assert (body["accepted"], body["duplicates"], body["invalid"], body["failed"]) == (2, 1, 3, 0)
    assert body["results"][5]["errors"][0]["pointer"] == "/data/amount"
    accepted = {body["results"][0]["id"], body["results"][2]["id"]}
    found = find_in_topic(settings.KAFKA_TOPIC_EVENTS, accepted)
    assert {k: len(v) for k, v in found.items()} == dict.fromkeys(accepted, 1)


def test_a_cloudevents_batch_is_accepted(client, writer_key):
    ids = [f"ceb-{uuid.uuid4()}" for _ in range(3)]
    items = [
        {
            "specversion": "1.0",
            "id": i,
            "source": "/b",
            "type": "payment.failed",
            "data": {"amount": 1, "currency": "EUR"},
        }
        for i in ids
    ]
    response = post(
        client,
        items,
        key=writer_key,
        url=f"{URL}/batch",
        content_type="application/cloudevents-batch+json",
    )
    assert response.json()["accepted"] == 3
    assert set(find_in_topic(settings.KAFKA_TOPIC_EVENTS, set(ids))) == set(ids)


def test_a_batch_over_the_limit_is_refused(client, writer_key, settings):
    settings.INGEST_MAX_BATCH_EVENTS = 3
    response = post(client, [flat()] * 4, key=writer_key, url=f"{URL}/batch")
    assert response.status_code == 413
    assert "at most 3" in response.json()["detail"]


@pytest.fixture
def broker_down(settings, free_port, fresh_kafka_clients):
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{free_port}"
    settings.KAFKA_MESSAGE_TIMEOUT_MS = 800
    yield
    kafka.reset_clients()


def test_broker_down_gives_503_with_retry_after_and_releases_the_claim(
    client, writer_key, broker_down, settings
):
    body = flat(id=f"down-{uuid.uuid4()}", source="/outage")
    response = post(client, body, key=writer_key)
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert int(response["Retry-After"]) > 0
    # Nothing was claimed: once the broker is back, the same event is accepted.
    assert not get_redis().exists(f"eventhub:seen:*:{body['id']}")
    batch = post(client, [flat()], key=writer_key, url=f"{URL}/batch")
    assert batch.status_code == 503


def test_a_try_that_died_before_its_answer_does_not_make_the_event_a_duplicate(client, writer_key):
    """A web process killed between claiming an event and the broker's answer leaves its
    claim pending: the producer's retry must not be told "duplicate" (the event may never have
    reached the topic); it is told to come back, and once the claim lapses it is published."""
    body = flat(id=f"crash-{uuid.uuid4()}", source="/crash")
    key = _idempotency_key({"source": "/crash", "id": body["id"]})
    get_redis().set(key, CLAIM_PENDING, ex=claim_seconds())  # what the dead try left

    retry = post(client, body, key=writer_key)
    assert retry.status_code == 503, retry.content
    assert retry.json()["type"].endswith("/publish-in-progress")
    assert int(retry["Retry-After"]) > 0
    in_batch = post(client, [body, flat()], key=writer_key, url=f"{URL}/batch").json()
    assert [r["status"] for r in in_batch["results"]] == ["failed", "accepted"]
    assert not find_in_topic(settings.KAFKA_TOPIC_EVENTS, {body["id"]}, timeout=3)
    # a pending claim lapses soon, unlike the day a done one is kept
    assert 0 < get_redis().ttl(key) <= claim_seconds()

    get_redis().delete(key)  # ...as it does once claim_seconds() have passed
    again = post(client, body, key=writer_key)
    assert again.status_code == 202 and "Idempotent-Replayed" not in again
    assert len(find_in_topic(settings.KAFKA_TOPIC_EVENTS, {body["id"]})[body["id"]]) == 1
    repeat = post(client, body, key=writer_key)
    assert repeat.status_code == 202 and repeat["Idempotent-Replayed"] == "true"


def test_an_async_event_the_broker_refuses_is_spooled_then_published(
    client, writer_key, settings, free_port
):
    get_redis().delete(SPOOL_KEY)
    good_servers, good_timeout = settings.KAFKA_BOOTSTRAP_SERVERS, settings.KAFKA_MESSAGE_TIMEOUT_MS
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{free_port}"
    settings.KAFKA_MESSAGE_TIMEOUT_MS = 500
    kafka.reset_clients()
    try:
        response = post(client, flat(), key=writer_key, url=f"{URL}/async")
        assert response.status_code == 202
        event_id = response.json()["id"]
        kafka.get_publisher().flush(5)  # delivery fails after the message timeout
        assert get_redis().llen(SPOOL_KEY) == 1
    finally:
        settings.KAFKA_BOOTSTRAP_SERVERS = good_servers
        settings.KAFKA_MESSAGE_TIMEOUT_MS = good_timeout
        kafka.reset_clients()
    assert events_republish_spooled() == 1
    assert get_redis().llen(SPOOL_KEY) == 0
    assert find_in_topic(settings.KAFKA_TOPIC_EVENTS, {event_id}).get(event_id)


def test_redis_down_gives_503_not_500(client, writer_key, settings, free_port):
    from core.redis import reset_client

    # authentication reads PostgreSQL; the idempotency claim needs Redis
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port}/0"
    settings.REDIS_TIMEOUT = 0.3
    reset_client()
    try:
        response = post(client, flat(), key=writer_key)
    finally:
        reset_client()
    assert response.status_code == 503
    assert response["Retry-After"]


def test_publishing_is_throttled_per_key_with_retry_after(client, writer_key, settings):
    rest = settings.REST_FRAMEWORK
    settings.REST_FRAMEWORK = {
        **rest,
        "DEFAULT_THROTTLE_RATES": {"publish": "2/min", "read": "9/s"},
    }
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    try:
        codes = [post(client, flat(), key=writer_key).status_code for _ in range(3)]
        third = post(client, flat(), key=writer_key)
    finally:
        settings.REST_FRAMEWORK = rest
        SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    assert codes == [202, 202, 429]
    assert third.status_code == 429
    assert int(third["Retry-After"]) >= 1
    assert third["Content-Type"] == "application/problem+json"
