"""The client against the real server (live_server), and its retries at one seam."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings

from eventhub_client import EventHubClient, EventHubError
from tests.conftest import find_in_topic

EVENT = {"event_type": "payment.failed", "user_id": "u-c", "amount": 2, "data": {"currency": "EUR"}}


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("event_type", "clean_redis")
class TestAgainstTheServer:
    def test_publish_reaches_kafka(self, live_server, writer_key):
        client = EventHubClient(live_server.url, api_key=writer_key)
        answer = client.publish(EVENT)
        assert answer["status"] == "accepted"
        assert find_in_topic(settings.KAFKA_TOPIC_EVENTS, {answer["id"]}).get(answer["id"])

    def test_a_batch_answers_each_item(self, live_server, writer_key):
        client = EventHubClient(live_server.url, api_key=writer_key)
        answer = client.publish_batch([EVENT, {**EVENT, "amount": -1}])
        assert [r["status"] for r in answer["results"]] == ["accepted", "invalid"]

    def test_an_invalid_event_raises_with_the_pointer(self, live_server, writer_key):
        client = EventHubClient(live_server.url, api_key=writer_key)
        with pytest.raises(EventHubError) as caught:
            client.publish({**EVENT, "amount": -1})
        assert caught.value.status == 422
        assert caught.value.errors[0]["pointer"] == "/data/amount"

    def test_the_same_idempotency_key_publishes_once(self, live_server, writer_key):
        client = EventHubClient(live_server.url, api_key=writer_key)
        first = client.publish(EVENT, idempotency_key="k-1")
        second = client.publish(EVENT, idempotency_key="k-1")
        assert first == second


class Flaky(BaseHTTPRequestHandler):
    """Answers 503 with Retry-After twice, then 202; remembers the Idempotency-Keys."""

    calls: list[str] = []

    def do_POST(self):  # noqa: N802 - http.server's naming
        self.rfile.read(int(self.headers["Content-Length"]))
        Flaky.calls.append(self.headers["Idempotency-Key"])
        if len(Flaky.calls) <= 2:
            body = json.dumps(
                {
                    "type": "x",
                    "title": "Service unavailable",
                    "status": 503,
                    "detail": "broker down",
                }
            ).encode()
            self.send_response(503)
            self.send_header("Retry-After", "0")
        else:
            body = json.dumps({"id": "e-1", "status": "accepted"}).encode()
            self.send_response(202)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def test_it_retries_503_with_the_same_idempotency_key():
    Flaky.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = EventHubClient(
            f"http://127.0.0.1:{server.server_port}", api_key="ehk_x", backoff_factor=0
        )
        assert client.publish(EVENT) == {"id": "e-1", "status": "accepted"}
    finally:
        server.shutdown()
    assert len(Flaky.calls) == 3
    assert len(set(Flaky.calls)) == 1


class AlwaysDown(Flaky):
    def do_POST(self):  # noqa: N802 - http.server's naming
        Flaky.calls.clear()  # so it never gets past the 503s
        super().do_POST()


def test_it_gives_up_with_the_problem_after_its_retries():
    Flaky.calls = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), AlwaysDown)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        client = EventHubClient(
            f"http://127.0.0.1:{server.server_port}", api_key="ehk_x", retries=2, backoff_factor=0
        )
        with pytest.raises(EventHubError) as caught:
            client.publish(EVENT)
    finally:
        server.shutdown()
    assert caught.value.status == 503 and caught.value.detail == "broker down"
