"""The live streams on a real ASGI server (uvicorn, started here on the test settings), with
real clients: SSE (httpx-sse), the events WebSocket (websockets) and a GraphQL subscription
over graphql-transport-ws (gql). Events are published over REST after the client connected
and stored by the real pipeline; a reconnect with the last id gets what came meanwhile, once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import httpx
import jsonschema
import pytest
import yaml
from httpx_sse import connect_sse
from websockets.sync.client import connect as websocket_connect

from accounts.roles import Role
from accounts.services import api_key_create
from pipeline.consumer import PipelineConsumer
from tests.helpers import pipeline_env
from tests.pipeline.test_consumer import topic, types  # noqa: F401 - fixtures

ROOT = Path(__file__).resolve().parent.parent.parent

pytestmark = pytest.mark.django_db(transaction=True)


def _wait_for_port(port: int, process: subprocess.Popen, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the ASGI server exited: {process.stdout.read()}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise TimeoutError("the ASGI server did not listen")


@pytest.fixture
def asgi_server(topic, free_port, mongo_db):  # noqa: F811
    """uvicorn serving eventhub.asgi on the test database, topic and MongoDB database."""
    env = pipeline_env(
        STREAM_MAX_PER_CREDENTIAL="3",
        STREAM_SEND_TIMEOUT_SECONDS="2",
        STREAM_HEARTBEAT_SECONDS="1",
    )
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "eventhub.asgi:application",
            "--port",
            str(free_port),
            "--lifespan",
            "off",
            "--timeout-graceful-shutdown",
            "2",
            "--log-level",
            "warning",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        _wait_for_port(free_port, process)
        yield f"http://127.0.0.1:{free_port}"
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def keys(db):
    return {role: api_key_create(name=f"stream {role}", role=role)[1] for role in Role.values}


def publish_over_rest(client, key: str, count: int, event_type: str = "order.created") -> list:
    ids = []
    for i in range(count):
        event_id = str(uuid.uuid4())
        response = client.post(
            "/api/v1/events",
            json.dumps(
                {
                    "id": event_id,
                    "source": "/stream",
                    "type": event_type,
                    "data": {"n": i, "amount": i, "currency": "EUR"},
                }
            ),
            content_type="application/json",
            HTTP_X_API_KEY=key,
        )
        assert response.status_code == 202, response.content
        ids.append(event_id)
    return ids


def run_pipeline(expected: int) -> None:
    assert (
        PipelineConsumer(batch_timeout_ms=50).run(max_events=expected, idle_exit_seconds=15)
        == expected
    )


class SSEReader(threading.Thread):
    """Reads one SSE stream into ``received`` (event id, data) until told to stop."""

    def __init__(self, url: str, key: str, last_event_id: str | None = None) -> None:
        super().__init__(daemon=True)
        self.url, self.key, self.last_event_id = url, key, last_event_id
        self.connected = threading.Event()
        self.received: list[tuple[str, dict]] = []
        self.stop = threading.Event()
        self.status: int | None = None

    def run(self) -> None:
        headers = {"X-API-Key": self.key}
        if self.last_event_id:
            headers["Last-Event-ID"] = self.last_event_id
        with httpx.Client(timeout=httpx.Timeout(30, read=5)) as client:
            with connect_sse(client, "GET", self.url, headers=headers) as source:
                self.status = source.response.status_code
                self.connected.set()
                try:
                    for sse in source.iter_sse():
                        if sse.event == "event":
                            self.received.append((sse.id, json.loads(sse.data)))
                        if self.stop.is_set():
                            return
                except httpx.ReadTimeout:
                    return

    def wait_for(self, count: int, timeout: float = 20) -> list[tuple[str, dict]]:
        deadline = time.monotonic() + timeout
        while len(self.received) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.received)


def test_sse_gets_what_is_published_after_it_connected_and_resumes_once(
    asgi_server,
    client,
    keys,
    types,  # noqa: F811
):
    url = f"{asgi_server}/api/v1/stream/events?type=order.*"
    reader = SSEReader(url, keys["reader"])
    reader.start()
    assert reader.connected.wait(10) and reader.status == 200
    first = publish_over_rest(client, keys["writer"], 3)
    publish_over_rest(client, keys["writer"], 1, event_type="payment.failed")  # filtered out
    run_pipeline(4)
    received = reader.wait_for(3)
    # in the order MongoDB stored them (partitions interleave): each once
    assert sorted(event["id"] for _, event in received) == sorted(first)
    assert {event["type"] for _, event in received} == {"order.created"}
    spec = yaml.safe_load((ROOT / "asyncapi.yaml").read_text())  # what the docs promise
    for _, event in received:
        jsonschema.validate(event, spec["components"]["messages"]["StreamedEvent"]["payload"])
    reader.stop.set()
    last_id = received[-1][0]

    meanwhile = publish_over_rest(client, keys["writer"], 2)
    run_pipeline(2)
    resumed = SSEReader(url, keys["reader"], last_event_id=last_id)
    resumed.start()
    assert resumed.connected.wait(10)
    got = resumed.wait_for(2)
    time.sleep(1.5)  # nothing more comes: no repeat of what the first reader had
    assert len(got) == 2
    assert sorted(event["id"] for _, event in resumed.received) == sorted(meanwhile)
    resumed.stop.set()


def test_a_payload_filter_and_bad_positions(asgi_server, client, keys, types):  # noqa: F811
    query = json.dumps({"payload.n": {"$gte": 1}})
    reader = SSEReader(
        f"{asgi_server}/api/v1/stream/events?{httpx.QueryParams(filter=query)}", keys["reader"]
    )
    reader.start()
    assert reader.connected.wait(10)
    ids = publish_over_rest(client, keys["writer"], 3)
    run_pipeline(3)
    assert sorted(event["id"] for _, event in reader.wait_for(2)) == sorted(ids[1:])
    reader.stop.set()

    bad = httpx.get(
        f"{asgi_server}/api/v1/stream/events",
        headers={"X-API-Key": keys["reader"], "Last-Event-ID": "not-a-token"},
    )
    assert bad.status_code == 400
    assert bad.headers["content-type"] == "application/problem+json"
    assert "Last-Event-ID" in bad.json()["detail"]
    invalid = httpx.get(
        f"{asgi_server}/api/v1/stream/events?filter=%7B%22%24where%22%3A1%7D",
        headers={"X-API-Key": keys["reader"]},
    )
    assert invalid.status_code == 400
    assert invalid.json()["errors"][0]["pointer"] == "/filter"


@pytest.mark.parametrize("path", ["/api/v1/stream/events", "/api/v1/stream/metrics"])
def test_streams_need_a_reader(asgi_server, credentials, keys, path):
    for headers, status in [
        ({}, 401),
        ({"Authorization": credentials["expired"]["HTTP_AUTHORIZATION"]}, 401),
        ({"Authorization": credentials["forged"]["HTTP_AUTHORIZATION"]}, 401),
        ({"X-API-Key": "ehk_nonsense"}, 401),
    ]:
        response = httpx.get(f"{asgi_server}{path}", headers=headers)
        assert response.status_code == status, headers
        assert response.headers["content-type"] == "application/problem+json"
    for role in Role.values:
        with httpx.stream(
            "GET", f"{asgi_server}{path}", headers={"X-API-Key": keys[role]}, timeout=5
        ) as response:
            assert response.status_code == 200, role
            assert response.headers["content-type"].startswith("text/event-stream")


def test_streams_per_credential_are_bounded(asgi_server, keys):
    url = f"{asgi_server}/api/v1/stream/events"
    with httpx.Client(timeout=5) as one:
        streams = [one.stream("GET", url, headers={"X-API-Key": keys["reader"]}) for _ in range(3)]
        opened = [s.__enter__() for s in streams]
        assert [r.status_code for r in opened] == [200] * 3
        refused = httpx.get(url, headers={"X-API-Key": keys["reader"]})
        assert refused.status_code == 429 and refused.headers["retry-after"]
        assert "3 streams" in refused.json()["detail"]
        # another caller is not affected
        with httpx.stream("GET", url, headers={"X-API-Key": keys["admin"]}) as other:
            assert other.status_code == 200
        for stream in streams:
            stream.__exit__(None, None, None)
    statuses = []
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the slots come back once the server sees them leave
        with httpx.stream("GET", url, headers={"X-API-Key": keys["reader"]}, timeout=5) as again:
            statuses.append(again.status_code)
        if statuses[-1] == 200:
            break
        time.sleep(0.5)
    assert statuses[-1] == 200


def test_the_websocket_feed(asgi_server, client, keys, types):  # noqa: F811
    ws_url = asgi_server.replace("http://", "ws://") + "/ws/events?type=order.created"
    with websocket_connect(ws_url, additional_headers={"X-API-Key": keys["reader"]}) as ws:
        ids = publish_over_rest(client, keys["writer"], 2)
        run_pipeline(2)
        messages = [json.loads(ws.recv(timeout=20)) for _ in ids]
    assert sorted(m["event"]["id"] for m in messages) == sorted(ids)
    from websockets.exceptions import ConnectionClosedError

    with pytest.raises(ConnectionClosedError) as refused:
        with websocket_connect(asgi_server.replace("http://", "ws://") + "/ws/events") as ws:
            ws.recv(timeout=5)
    assert refused.value.rcvd.code == 4401
    assert refused.value.rcvd.reason == "Authentication credentials were not provided."


def test_a_graphql_subscription_over_graphql_transport_ws(asgi_server, client, keys, types):  # noqa: F811
    from gql import Client, gql
    from gql.transport.websockets import WebsocketsTransport

    received: list[dict] = []
    subscribed = threading.Event()

    async def subscribe() -> None:
        transport = WebsocketsTransport(
            url=asgi_server.replace("http://", "ws://") + "/graphql",
            init_payload={"X-API-Key": keys["reader"]},
            subprotocols=[WebsocketsTransport.GRAPHQLWS_SUBPROTOCOL],
        )
        async with Client(transport=transport) as session:
            query = gql(
                """subscription($types: [String!]) {
                  eventStream(types: $types) { position event { id type data } } }"""
            )
            subscribed.set()
            async for result in session.subscribe(query, variable_values={"types": ["order.*"]}):
                received.append(result["eventStream"])
                if len(received) == 2:
                    return

    thread = threading.Thread(target=lambda: asyncio.run(asyncio.wait_for(subscribe(), 40)))
    thread.start()
    assert subscribed.wait(10)
    time.sleep(1)  # the subscribe message reaches the server and its change stream opens
    ids = publish_over_rest(client, keys["writer"], 2)
    run_pipeline(2)
    thread.join(45)
    assert sorted(item["event"]["id"] for item in received) == sorted(ids)
    assert all(item["position"] for item in received)


def test_graphql_subscriptions_need_credentials_and_a_known_position(asgi_server, keys):
    from websockets.exceptions import ConnectionClosedError

    url = asgi_server.replace("http://", "ws://") + "/graphql"
    with pytest.raises(ConnectionClosedError) as refused:
        with websocket_connect(url, subprotocols=["graphql-transport-ws"]) as ws:
            ws.send(json.dumps({"type": "connection_init", "payload": {}}))
            ws.recv(timeout=5)
    assert refused.value.rcvd.code == 4401
    with websocket_connect(url, subprotocols=["graphql-transport-ws"]) as ws:
        ws.send(json.dumps({"type": "connection_init", "payload": {"X-API-Key": keys["reader"]}}))
        assert json.loads(ws.recv(timeout=5)) == {"type": "connection_ack"}
        query = 'subscription { eventStream(lastEventId: "nowhere") { position } }'
        ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
        answer = json.loads(ws.recv(timeout=5))
        assert answer["type"] == "error" and answer["id"] == "1"
        assert answer["payload"][0]["extensions"]["code"] == "INVALID_POSITION"
        ws.send(json.dumps({"type": "ping"}))
        assert json.loads(ws.recv(timeout=5)) == {"type": "pong"}
