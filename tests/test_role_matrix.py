"""Every caller against every operation, the operations enumerated from the code itself: the
REST endpoints from the URL conf, the GraphQL fields from the schema, the gRPC methods from the
service descriptors, the live streams from the ASGI routes and the GraphQL subscription type.
Each answer is checked against what the role model allows (DESIGN.md: readers read, writers
also publish, admins also configure), so an operation added later is in the table by itself,
and one whose guard is missing or wrong fails here.

Callers: anonymous, an expired token, a forged token, and reader, writer and admin tokens.
"""

from __future__ import annotations

import json
import re

import grpc
import pytest
from drf_spectacular.generators import EndpointEnumerator

from accounts.roles import Role
from analytics.grpc_api import analytics_pb2 as apb
from analytics.grpc_api import analytics_pb2_grpc as apb_grpc
from analytics.grpc_api.server import add_to_server as add_analytics
from events.grpc_api import eventhub_pb2 as pb
from events.grpc_api import eventhub_pb2_grpc as pb_grpc
from events.grpc_api.server import build_server
from tests.analytics.test_streams import asgi_server  # noqa: F401 - fixture
from tests.pipeline.test_consumer import topic  # noqa: F401 - fixture of asgi_server

CALLERS = ["anonymous", "expired", "forged", Role.READER, Role.WRITER, Role.ADMIN]
RANK = {Role.READER: 1, Role.WRITER: 2, Role.ADMIN: 3}
PROBLEM = "application/problem+json"

# Public operations: the token endpoints read no credentials at all; the schema and its docs
# are open to anyone, but credentials that are sent must be good (as everywhere else).
TAKES_NO_CREDENTIALS = {"/api/v1/auth/token", "/api/v1/auth/token/refresh"}
PUBLIC = TAKES_NO_CREDENTIALS | {"/api/v1/schema", "/api/docs"}


def least_role(path: str, method: str) -> str | None:
    """What the role model asks of a REST operation (None: public)."""
    if path in PUBLIC:
        return None
    if method == "GET":
        return Role.READER
    if method == "POST" and re.fullmatch(r"/api/v1/events(/async|/batch)?", path):
        return Role.WRITER
    return Role.ADMIN


def rest_operations() -> list[tuple[str, str]]:
    """(method, path) of every DRF operation the URL conf routes."""
    operations = {
        (method, path)
        for path, _regex, method, _view in EndpointEnumerator().get_api_endpoints()
        if path.startswith("/api/")
    }
    return sorted(operations, key=lambda op: (op[1], op[0]))


REST = rest_operations()


def expected_answer(caller: str, least: str | None, *, reads_credentials: bool = True) -> str:
    """ "allowed", "unauthenticated" or "forbidden"."""
    if caller in ("expired", "forged") and reads_credentials:
        return "unauthenticated"
    if least is None:
        return "allowed"
    if caller in ("anonymous", "expired", "forged"):
        return "unauthenticated"
    return "allowed" if RANK[caller] >= RANK[least] else "forbidden"


@pytest.fixture
def world(db, store_event):
    """One of each thing the operations name, and where their ids go in a path."""
    from events.registry import registry
    from tests.events.factories import EventTypeFactory
    from tests.rules.factories import RuleFactory
    from tests.subscriptions.factories import SubscriptionFactory
    from tests.webhooks.factories import DeliveryFactory

    EventTypeFactory(name="payment.failed", schema={"type": "object"})
    registry.invalidate()
    subscription = SubscriptionFactory()
    ids = {
        "subscribers": subscription.subscriber_id,
        "subscriptions": subscription.pk,
        "deliveries": DeliveryFactory(subscription=subscription, status="dead").pk,
        "rules": RuleFactory().pk,
        "event-types": "payment.failed",
        "events": store_event(),
    }
    yield ids
    registry.invalidate()


def concrete(path: str, ids: dict) -> str:
    def fill(match: re.Match) -> str:
        resource = path.removeprefix("/api/v1/").split("/")[0]
        return str(ids[resource])

    return re.sub(r"\{[^}]+\}", fill, path)


def test_the_rest_table_holds_every_routed_operation():
    # the enumeration is the URL conf's: a sanity check that it found the API
    assert len(REST) >= 40
    assert ("POST", "/api/v1/events/batch") in REST
    assert ("DELETE", "/api/v1/subscriptions/{pk}") in REST
    assert ("POST", "/api/v1/subscriptions/{pk}/rotate-secret") in REST


@pytest.mark.usefixtures("clean_redis")
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("method", "path"), REST, ids=[f"{m} {p}" for m, p in REST])
def test_rest(client, credentials, world, caller, method, path):
    kwargs = dict(credentials[caller])
    if method in ("POST", "PUT", "PATCH"):
        kwargs.update(data="{}", content_type="application/json")
    response = getattr(client, method.lower())(concrete(path, world), **kwargs)

    expected = expected_answer(
        caller, least_role(path, method), reads_credentials=path not in TAKES_NO_CREDENTIALS
    )
    status = response.status_code
    if expected == "allowed":
        assert status not in (401, 403) and status < 500, response.content
    else:
        assert status == (401 if expected == "unauthenticated" else 403), response.content
        assert response["Content-Type"] == PROBLEM
        if status == 401:
            assert response.has_header("WWW-Authenticate")
    if status >= 400:
        assert response["Content-Type"] == PROBLEM


# --- GraphQL -----------------------------------------------------------------------------------

# The arguments each field needs; the test below fails when the schema has a field this lacks.
GRAPHQL_ARGUMENTS = {
    ("query", "aggregatedMetrics"): "(minutes: 5)",
    ("query", "deliveries"): "(limit: 1)",
    ("query", "subscriptions"): "",
    ("query", "events"): "(limit: 1)",
    ("query", "event"): '(id: "no-such-event")',
    ("query", "lastEvents"): "(limit: 1)",
    ("query", "eventTypes"): "",
    ("query", "analyticsSummary"): '(since: "1h")',
    ("query", "analyticsTimeseries"): '(since: "1h")',
    ("query", "analyticsTopErrors"): '(since: "1h")',
    ("query", "analyticsUserActivity"): '(since: "1h")',
    ("query", "analyticsFunnel"): '(since: "1h", steps: ["order.created", "order.paid"])',
    ("query", "pipelineLag"): "",
    ("query", "pipelineStats"): "",
    ("mutation", "retryDelivery"): '(id: "{deliveries}")',
    ("mutation", "createSubscription"): (
        '(subscriber: "{subscribers}", url: "http://127.0.0.1:9/x", eventTypes: ["*"])'
    ),
    ("mutation", "pauseSubscription"): '(id: "{subscriptions}")',
    ("mutation", "resumeSubscription"): '(id: "{subscriptions}")',
    ("mutation", "publishEvent"): '(input: {type: "payment.failed", data: {amount: 1}})',
}
GRAPHQL_WRITER = {("mutation", "publishEvent")}


def graphql_operations() -> list[tuple[str, str]]:
    from eventhub.schema import schema

    graphql = schema.graphql_schema
    return [
        (kind, name)
        for kind, root in (("query", graphql.query_type), ("mutation", graphql.mutation_type))
        for name in root.fields
    ]


GRAPHQL = graphql_operations()


def test_every_graphql_field_is_in_the_table():
    assert set(GRAPHQL) == set(GRAPHQL_ARGUMENTS)


@pytest.mark.usefixtures("clean_redis")
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(("kind", "name"), GRAPHQL, ids=[f"{k} {n}" for k, n in GRAPHQL])
def test_graphql(client, credentials, world, caller, kind, name):
    arguments = GRAPHQL_ARGUMENTS[(kind, name)]
    for resource, value in world.items():
        arguments = arguments.replace("{" + resource + "}", str(value))
    query = f"{kind} {{ {name}{arguments} {{ __typename }} }}"
    response = client.post(
        "/graphql",
        json.dumps({"query": query}),
        content_type="application/json",
        **credentials[caller],
    )
    assert response.status_code < 500, response.content
    codes = [e.get("extensions", {}).get("code") for e in response.json().get("errors", [])]

    if kind == "query":
        least = Role.READER
    else:
        least = Role.WRITER if (kind, name) in GRAPHQL_WRITER else Role.ADMIN
    expected = expected_answer(caller, least)
    if expected == "allowed":
        assert "UNAUTHENTICATED" not in codes and "FORBIDDEN" not in codes, response.content
    else:
        assert codes == ["UNAUTHENTICATED" if expected == "unauthenticated" else "FORBIDDEN"]


# --- gRPC --------------------------------------------------------------------------------------


def _event() -> pb.Event:
    return pb.Event(
        event_type="payment.failed", user_id="u", data_json='{"amount": 1, "currency": "EUR"}'
    )


def _first(stream) -> None:
    """The first message of a server stream (they run until cancelled), or its refusal."""
    try:
        next(iter(stream))
    except grpc.RpcError as exc:
        if exc.code() != grpc.StatusCode.DEADLINE_EXCEEDED:  # nothing yet: not a refusal
            raise
    finally:
        stream.cancel()


HOUR = apb.Window(since="1h")
# One call per method of every service the gRPC server serves; the test below fails when one
# has a method this lacks.
GRPC_CALLS = {
    "eventhub.v1.EventService/CreateEvent": (
        Role.WRITER,
        lambda c, md: events_stub(c).CreateEvent(
            pb.CreateEventRequest(event=_event()), metadata=md
        ),
    ),
    "eventhub.v1.EventService/CreateEvents": (
        Role.WRITER,
        lambda c, md: events_stub(c).CreateEvents(
            pb.CreateEventsRequest(events=[_event()]), metadata=md
        ),
    ),
    "eventhub.v1.EventService/StreamEvents": (
        Role.WRITER,
        lambda c, md: list(
            events_stub(c).StreamEvents(
                iter([pb.StreamRequest(event=_event(), sequence=1)]), metadata=md
            )
        ),
    ),
    "eventhub.v1.EventService/GetEvents": (
        Role.READER,
        lambda c, md: events_stub(c).GetEvents(pb.GetEventsRequest(limit=1), metadata=md),
    ),
    "eventhub.analytics.v1.AnalyticsService/GetSummary": (
        Role.READER,
        lambda c, md: analytics_stub(c).GetSummary(apb.SummaryRequest(window=HOUR), metadata=md),
    ),
    "eventhub.analytics.v1.AnalyticsService/GetTimeseries": (
        Role.READER,
        lambda c, md: analytics_stub(c).GetTimeseries(
            apb.TimeseriesRequest(window=HOUR), metadata=md
        ),
    ),
    "eventhub.analytics.v1.AnalyticsService/GetTopErrors": (
        Role.READER,
        lambda c, md: analytics_stub(c).GetTopErrors(
            apb.TopErrorsRequest(window=HOUR), metadata=md
        ),
    ),
    "eventhub.analytics.v1.AnalyticsService/GetUserActivity": (
        Role.READER,
        lambda c, md: analytics_stub(c).GetUserActivity(
            apb.UserActivityRequest(window=HOUR), metadata=md
        ),
    ),
    "eventhub.analytics.v1.AnalyticsService/GetFunnel": (
        Role.READER,
        lambda c, md: analytics_stub(c).GetFunnel(
            apb.FunnelRequest(window=HOUR, steps=["order.created", "order.paid"]), metadata=md
        ),
    ),
    "eventhub.analytics.v1.AnalyticsService/GetRealTimeAnalytics": (
        Role.READER,
        lambda c, md: _first(
            analytics_stub(c).GetRealTimeAnalytics(
                apb.RealTimeRequest(since="5m", interval_seconds=1), metadata=md, timeout=3
            )
        ),
    ),
    "eventhub.analytics.v1.AnalyticsService/StreamMetrics": (
        Role.READER,
        lambda c, md: _first(
            analytics_stub(c).StreamMetrics(apb.MetricsRequest(), metadata=md, timeout=2)
        ),
    ),
    "eventhub.analytics.v1.MetricsService/Export": (
        Role.READER,
        lambda c, md: metrics_stub(c).Export(apb.ExportRequest(), metadata=md),
    ),
}


def events_stub(channel):
    return pb_grpc.EventServiceStub(channel)


def analytics_stub(channel):
    return apb_grpc.AnalyticsServiceStub(channel)


def metrics_stub(channel):
    return apb_grpc.MetricsServiceStub(channel)


GRPC = sorted(
    f"{service.full_name}/{method.name}"
    for descriptor in (pb.DESCRIPTOR, apb.DESCRIPTOR)
    for service in descriptor.services_by_name.values()
    for method in service.methods
)


def test_every_grpc_method_is_in_the_table():
    assert set(GRPC) == set(GRPC_CALLS)


@pytest.fixture
def channel():
    """The gRPC server as grpc_server builds it (every service), and a channel to it."""
    server, port = build_server("127.0.0.1:0", workers=8, others=(add_analytics,))
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield channel
    channel.close()
    server.stop(grace=None)


@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("event_type", "clean_redis", "mongo_db")
@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize("method", GRPC)
def test_grpc(channel, credentials, caller, method):
    least, call = GRPC_CALLS[method]
    header = credentials[caller].get("HTTP_AUTHORIZATION")
    md = [("authorization", header)] if header else []
    expected = expected_answer(caller, least)
    if expected == "allowed":
        try:
            call(channel, md)
        except grpc.RpcError as exc:  # refused for its content, perhaps, never for the caller
            assert exc.code() not in (
                grpc.StatusCode.UNAUTHENTICATED,
                grpc.StatusCode.PERMISSION_DENIED,
            )
    else:
        with pytest.raises(grpc.RpcError) as caught:
            call(channel, md)
        assert caught.value.code() == (
            grpc.StatusCode.UNAUTHENTICATED
            if expected == "unauthenticated"
            else grpc.StatusCode.PERMISSION_DENIED
        )


# --- live streams (the ASGI server) --------------------------------------------------------------


def stream_operations() -> list[tuple[str, str]]:
    """(door, path or field) of every live stream: the SSE and WebSocket routes and the fields
    of the GraphQL subscription type. Every one needs a reader at least."""
    from analytics.live.asgi import SSE_PATHS, WEBSOCKET_PATHS
    from eventhub.schema import schema

    subscription_type = schema.graphql_schema.subscription_type
    return [
        *(("sse", path) for path in sorted(SSE_PATHS)),
        *(("websocket", path) for path in sorted(WEBSOCKET_PATHS)),
        *(("graphql-ws", name) for name in sorted(subscription_type.fields)),
    ]


STREAMS = stream_operations()


def stream_answer(url: str, door: str, target: str, header: str | None) -> str:
    """What a stream door answered a caller: "allowed", "unauthenticated" or "forbidden"."""
    import httpx
    from websockets.exceptions import ConnectionClosedError
    from websockets.sync.client import connect

    headers = {"Authorization": header} if header else {}
    if door == "sse":
        with httpx.stream("GET", f"{url}{target}", headers=headers, timeout=5) as response:
            if response.status_code == 200:
                assert response.headers["content-type"].startswith("text/event-stream")
                return "allowed"
            assert response.headers["content-type"] == PROBLEM
            return {401: "unauthenticated", 403: "forbidden"}[response.status_code]
    ws_url = url.replace("http://", "ws://")
    try:
        if door == "websocket":
            with connect(f"{ws_url}{target}", additional_headers=headers) as ws:
                ws.recv(timeout=1)  # open, and nothing to say yet
        else:
            with connect(f"{ws_url}/graphql", subprotocols=["graphql-transport-ws"]) as ws:
                ws.send(json.dumps({"type": "connection_init", "payload": headers}))
                assert json.loads(ws.recv(timeout=5)) == {"type": "connection_ack"}
                query = f"subscription {{ {target} {{ __typename }} }}"
                ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": query}}))
                ws.recv(timeout=1)
    except TimeoutError:
        return "allowed"
    except ConnectionClosedError as closed:
        return {4401: "unauthenticated", 4403: "forbidden"}[closed.rcvd.code]
    raise AssertionError(f"{door} {target} neither stayed open nor closed with a reason")


def test_the_stream_table_holds_every_door():
    assert {door for door, _ in STREAMS} == {"sse", "websocket", "graphql-ws"}


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("door", "target"), STREAMS, ids=[f"{d} {t}" for d, t in STREAMS])
def test_streams(asgi_server, credentials, door, target):  # noqa: F811
    for caller in CALLERS:
        header = credentials[caller].get("HTTP_AUTHORIZATION")
        assert stream_answer(asgi_server, door, target, header) == expected_answer(
            caller, Role.READER
        ), caller
