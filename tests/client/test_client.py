"""The client against the real server (``live_server``), and its retries at one seam.

The integration tests run the whole REST path: authentication by API key, validation against
the type's JSON Schema, Redis de-duplication and the Kafka acknowledgement, then read the event
back from the topic. Only the retry tests use a stand-in server (the stdlib's), since making
the real one answer 503 on cue would mean stopping the broker under the other tests.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings

from accounts.roles import Role
from accounts.services import api_key_create
from eventhub_client import EventHubClient, EventHubConnectionError, EventHubError
from events.registry import registry
from tests.events.factories import EventTypeFactory
from tests.helpers import find_in_topic

EVENT = {
    "event_type": "payment.failed",
    "user_id": "u-client",
    "amount": 12.5,
    "data": {"currency": "EUR"},
}


@pytest.fixture
def payment_type(transactional_db):
    """``payment.failed`` with the demo schema, known to the ingest registry."""
    created = EventTypeFactory(
        name="payment.failed",
        schema={
            "type": "object",
            "required": ["amount", "currency"],
            "properties": {
                "amount": {"type": "number", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            },
        },
        example={"amount": 1, "currency": "EUR"},
    )
    registry.invalidate()
    yield created
    registry.invalidate()


@pytest.fixture
def client(live_server, payment_type, clean_redis) -> Iterator[EventHubClient]:
    _, key = api_key_create(name="client test", role=Role.WRITER)
    with EventHubClient(live_server.url, api_key=key, timeout=15) as client:
        yield client


@pytest.mark.django_db(transaction=True)
class TestAgainstTheServer:
    def test_publish_answers_after_kafka_took_it(self, client):
        answer = client.publish(EVENT)
        assert answer["status"] == "accepted" and answer["replayed"] is False
        found = find_in_topic(settings.KAFKA_TOPIC_EVENTS, {answer["id"]})
        assert len(found.get(answer["id"], [])) == 1
        (message,) = found[answer["id"]]
        envelope = json.loads(message.value())
        assert envelope["type"] == "payment.failed"
        assert envelope["subject"] == "u-client"
        assert envelope["data"] == {"currency": "EUR", "amount": 12.5}
        assert message.key() == b"u-client"

    def test_async_mode_is_accepted(self, client):
        answer = client.publish(EVENT, mode="async")
        assert answer["status"] == "accepted"
        assert find_in_topic(settings.KAFKA_TOPIC_EVENTS, {answer["id"]}).get(answer["id"])

    def test_the_same_idempotency_key_replays_the_first_answer(self, client):
        key = f"order-{uuid.uuid4().hex}"  # unique: the topic keeps earlier runs' events
        first = client.publish(EVENT, idempotency_key=key)
        second = client.publish(EVENT, idempotency_key=key)
        assert second["id"] == first["id"]
        assert second["replayed"] is True
        found = find_in_topic(settings.KAFKA_TOPIC_EVENTS, {first["id"]})
        assert len(found[first["id"]]) == 1, "a repeat must not publish again"

    def test_the_same_event_id_publishes_once(self, client):
        event = {**EVENT, "id": f"client-{uuid.uuid4().hex}"}
        assert client.publish(event)["replayed"] is False
        assert client.publish(event)["replayed"] is True  # another key, the same source + id

    def test_a_batch_answers_each_item(self, client):
        invalid = {**EVENT, "amount": -1}
        answer = client.publish_batch([EVENT, invalid, {**EVENT, "user_id": "u-2"}])
        assert (answer["accepted"], answer["invalid"], answer["failed"]) == (2, 1, 0)
        statuses = [r["status"] for r in answer["results"]]
        assert statuses == ["accepted", "invalid", "accepted"]
        assert answer["results"][1]["errors"][0]["pointer"] == "/data/amount"
        accepted = {r["id"] for r in answer["results"] if r["status"] == "accepted"}
        assert set(find_in_topic(settings.KAFKA_TOPIC_EVENTS, accepted)) == accepted

    def test_an_invalid_event_raises_with_the_json_pointer(self, client):
        with pytest.raises(EventHubError) as caught:
            client.publish({**EVENT, "amount": -1, "data": {"currency": "euro"}})
        error = caught.value
        assert error.status == 422
        assert error.title == "Invalid event"
        assert error.type.endswith("invalid-event")
        pointers = {e["pointer"] for e in error.errors}
        assert pointers == {"/data/amount", "/data/currency"}

    def test_an_unknown_type_raises_422(self, client):
        with pytest.raises(EventHubError) as caught:
            client.publish({**EVENT, "event_type": "no.such.type"})
        assert caught.value.status == 422
        assert caught.value.errors[0]["pointer"] == "/type"

    def test_pages_follows_the_cursors_of_any_list(self, live_server, payment_type):
        made = {EventTypeFactory(name=f"client.type_{n}").name for n in range(7)}
        _, key = api_key_create(name="client reader", role=Role.READER)
        with EventHubClient(live_server.url, api_key=key) as reader:
            first = reader.page("/api/v1/event-types", limit=3)
            assert len(first["results"]) == 3 and first["next"]
            names = [t["name"] for t in reader.pages("/api/v1/event-types", limit=3)]
        assert len(names) == len(set(names)) == 8  # the seven and payment.failed, once each
        assert made <= set(names)

    def test_a_bad_key_raises_401(self, live_server, payment_type):
        client = EventHubClient(live_server.url, api_key="ehk_not-a-real-key")
        with pytest.raises(EventHubError) as caught:
            client.publish(EVENT)
        assert caught.value.status == 401


# --- retries, against a stand-in server ------------------------------------------------------


class Scripted(BaseHTTPRequestHandler):
    """Answers POSTs with the scripted (status, headers) in turn, then 202; records requests."""

    script: list[tuple[int, dict[str, str]]] = []
    seen: list[tuple[str | None, bytes]] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["Content-Length"]))
        type(self).seen.append((self.headers.get("Idempotency-Key"), body))
        if type(self).script:
            status, headers = type(self).script.pop(0)
            answer = {
                "type": "https://eventhub.dev/problems/dependency-unavailable",
                "title": "Service unavailable",
                "status": status,
                "detail": "broker down",
            }
            content_type = "application/problem+json"
        else:
            status, headers = 202, {}
            sent = json.loads(body)
            answer = {"id": sent.get("id") if isinstance(sent, dict) else None}
            answer["status"] = "accepted"
            content_type = "application/json"
        data = json.dumps(answer).encode()
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass  # keep the test output clean


@pytest.fixture
def scripted() -> Iterator[tuple[str, type[Scripted]]]:
    handler = type("Handler", (Scripted,), {"script": [], "seen": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}", handler
    server.shutdown()
    server.server_close()


def test_503_with_retry_after_is_retried_with_the_same_key_and_body(scripted):
    url, handler = scripted
    handler.script = [(503, {"Retry-After": "0"}), (503, {"Retry-After": "0"})]
    client = EventHubClient(url, api_key="ehk_x", backoff_factor=0)
    answer = client.publish(EVENT)
    assert answer["status"] == "accepted"
    assert len(handler.seen) == 3
    keys = {key for key, _ in handler.seen}
    assert len(keys) == 1 and None not in keys
    bodies = {body for _, body in handler.seen}
    assert len(bodies) == 1, "every attempt sends the same bytes (and the same event id)"
    assert answer["id"] == json.loads(bodies.pop())["id"]


def test_429_is_retried_after_the_time_the_server_asks_for(scripted):
    import time

    url, handler = scripted
    handler.script = [(429, {"Retry-After": "1"})]
    client = EventHubClient(url, api_key="ehk_x", backoff_factor=0)
    started = time.monotonic()
    client.publish_batch([EVENT, EVENT])
    assert time.monotonic() - started >= 0.9
    assert len(handler.seen) == 2 and len({key for key, _ in handler.seen}) == 1


def test_each_call_gets_its_own_key_unless_one_is_given(scripted):
    url, handler = scripted
    client = EventHubClient(url, api_key="ehk_x")
    client.publish(EVENT)
    client.publish(EVENT)
    client.publish(EVENT, idempotency_key="mine")
    keys = [key for key, _ in handler.seen]
    assert keys[0] != keys[1] and keys[2] == "mine"


def test_a_repeated_call_with_the_same_key_sends_the_same_body(scripted):
    # the server refuses a reused Idempotency-Key whose body differs, so the id made for an
    # event without one must come from the key, not from chance
    url, handler = scripted
    client = EventHubClient(url, api_key="ehk_x")
    client.publish_batch([EVENT, EVENT], idempotency_key="k-1")
    client.publish_batch([EVENT, EVENT], idempotency_key="k-1")
    client.publish_batch([EVENT, EVENT], idempotency_key="k-2")
    (key1, body1), (_, body2), (_, body3) = handler.seen
    assert key1 == "k-1" and body1 == body2 and body1 != body3
    ids = [item["id"] for item in json.loads(body1)]
    assert len(set(ids)) == 2, "each item of a batch gets its own id"


def test_the_callers_event_is_left_alone(scripted):
    url, _ = scripted
    event = dict(EVENT)
    EventHubClient(url, api_key="ehk_x").publish(event)
    assert event == EVENT


def test_after_the_retries_the_last_problem_is_raised(scripted):
    url, handler = scripted
    handler.script = [(503, {"Retry-After": "0"})] * 5
    client = EventHubClient(url, api_key="ehk_x", retries=2, backoff_factor=0)
    with pytest.raises(EventHubError) as caught:
        client.publish(EVENT)
    assert len(handler.seen) == 3  # the first attempt and two retries
    assert caught.value.status == 503
    assert caught.value.detail == "broker down"
    assert caught.value.type.endswith("dependency-unavailable")


def test_an_unreachable_server_raises_a_connection_error(free_port):
    client = EventHubClient(f"http://127.0.0.1:{free_port}", api_key="ehk_x", retries=1)
    with pytest.raises(EventHubConnectionError) as caught:
        client.publish(EVENT)
    assert caught.value.status is None


def test_either_an_api_key_or_a_token():
    with pytest.raises(ValueError):
        EventHubClient("http://x")
    with pytest.raises(ValueError):
        EventHubClient("http://x", api_key="ehk_a", token="jwt")
