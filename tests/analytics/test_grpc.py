"""AnalyticsService and MetricsService over a real gRPC server: the REST answers, the roles,
the checks, the export formats and both server streams."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import grpc
import pytest
from prometheus_client.parser import text_string_to_metric_families

from analytics.grpc_api import analytics_pb2 as pb
from analytics.grpc_api import analytics_pb2_grpc as pb_grpc
from analytics.grpc_api.server import add_to_server
from analytics.rollups import period_start
from events.grpc_api.server import build_server

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def channel():
    server, port = build_server("127.0.0.1:0", workers=8, others=(add_to_server,))
    server.start()
    channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    yield channel
    channel.close()
    server.stop(grace=None)


def md(credentials, who: str) -> list[tuple[str, str]]:
    value = credentials[who].get("HTTP_AUTHORIZATION")
    return [("authorization", value)] if value else []


def test_the_answers_are_the_rest_answers(channel, credentials, client, store_generated):
    store_generated(31, 400, span=timedelta(hours=20))
    stub = pb_grpc.AnalyticsServiceStub(channel)
    reader = md(credentials, "reader")
    window = pb.Window(since="24h")
    summary = stub.GetSummary(pb.SummaryRequest(window=window), metadata=reader)
    rest = client.get("/api/v1/analytics/summary?since=24h", **credentials["reader"]).json()
    assert summary.total == rest["total"] == 400
    assert [(k.key, k.count) for k in summary.by_type] == [
        (k["key"], k["count"]) for k in rest["by_type"]
    ]
    assert summary.sum == pytest.approx(rest["sum"])
    assert not summary.deliveries.HasField("success_rate")  # no deliveries: null, not 0

    series = stub.GetTimeseries(
        pb.TimeseriesRequest(window=window, bucket="1h", type="order.*"), metadata=reader
    )
    rest_series = client.get(
        "/api/v1/analytics/timeseries?since=24h&bucket=1h&type=order.*", **credentials["reader"]
    ).json()
    assert [p.count for p in series.points] == [p["count"] for p in rest_series["points"]]

    errors = stub.GetTopErrors(pb.TopErrorsRequest(window=window, limit=3), metadata=reader)
    assert len(errors.errors) == 3 and errors.errors[0].count >= errors.errors[-1].count
    activity = stub.GetUserActivity(
        pb.UserActivityRequest(window=window, subject="carol"), metadata=reader
    )
    assert [s.subject for s in activity.subjects] == ["carol"]
    funnel = stub.GetFunnel(
        pb.FunnelRequest(window=window, steps=["user.login", "order.created"]), metadata=reader
    )
    rest_funnel = client.get(
        "/api/v1/analytics/funnel?since=24h&steps=user.login,order.created",
        **credentials["reader"],
    ).json()
    assert [s.subjects for s in funnel.steps] == [s["subjects"] for s in rest_funnel["steps"]]
    assert not funnel.steps[0].HasField("conversion")


@pytest.mark.parametrize(
    ("who", "code"),
    [
        ("anonymous", grpc.StatusCode.UNAUTHENTICATED),
        ("expired", grpc.StatusCode.UNAUTHENTICATED),
        ("forged", grpc.StatusCode.UNAUTHENTICATED),
    ],
)
def test_every_call_needs_credentials(channel, credentials, who, code, mongo_db):
    stub = pb_grpc.AnalyticsServiceStub(channel)
    metrics = pb_grpc.MetricsServiceStub(channel)
    for call in [
        lambda m: stub.GetSummary(pb.SummaryRequest(), metadata=m),
        lambda m: stub.GetFunnel(pb.FunnelRequest(steps=["a", "b"]), metadata=m),
        lambda m: next(stub.StreamMetrics(pb.MetricsRequest(), metadata=m)),
        lambda m: next(stub.GetRealTimeAnalytics(pb.RealTimeRequest(), metadata=m)),
        lambda m: metrics.Export(pb.ExportRequest(), metadata=m),
    ]:
        with pytest.raises(grpc.RpcError) as refused:
            call(md(credentials, who))
        assert refused.value.code() == code


def test_bad_arguments_name_the_field(channel, credentials, mongo_db):
    stub = pb_grpc.AnalyticsServiceStub(channel)
    with pytest.raises(grpc.RpcError) as refused:
        stub.GetTimeseries(
            pb.TimeseriesRequest(window=pb.Window(since="soon"), bucket="3m"),
            metadata=md(credentials, "reader"),
        )
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    trailers = dict(refused.value.trailing_metadata())
    assert "/since" in trailers["errors"] and "/bucket" in trailers["errors"]


def test_export_in_every_format(channel, credentials, store_generated):
    documents = store_generated(32, 200, span=timedelta(minutes=50))
    metrics = pb_grpc.MetricsServiceStub(channel)
    reader = md(credentials, "reader")
    text = metrics.Export(
        pb.ExportRequest(format="prometheus", period="1h", window=pb.Window(since="3h")),
        metadata=reader,
    )
    assert text.content_type.startswith("text/plain")
    families = {f.name: f for f in text_string_to_metric_families(text.body)}
    assert sum(s.value for s in families["eventhub_rollup_events"].samples) == len(documents)
    assert all(s.timestamp for s in families["eventhub_rollup_events"].samples)
    as_json = metrics.Export(
        pb.ExportRequest(format="json", period="1m", window=pb.Window(since="3h")), metadata=reader
    )
    import json

    rows = json.loads(as_json.body)
    assert sum(row["count"] for row in rows) == len(documents)
    as_csv = metrics.Export(
        pb.ExportRequest(format="csv", period="5m", window=pb.Window(since="3h")), metadata=reader
    )
    lines = as_csv.body.splitlines()
    assert lines[0] == "period,start,type,source,band,count,amount_sum"
    assert sum(int(line.split(",")[5]) for line in lines[1:]) == len(documents)
    with pytest.raises(grpc.RpcError) as refused:
        metrics.Export(pb.ExportRequest(format="xml"), metadata=reader)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_the_server_streams(channel, credentials, store_generated):
    now = datetime.now(tz=UTC)
    documents = store_generated(33, 120, span=timedelta(minutes=4), now=now)
    stub = pb_grpc.AnalyticsServiceStub(channel)
    reader = md(credentials, "reader")
    first = period_start(now - timedelta(minutes=4), "1m")
    minutes = stub.StreamMetrics(
        pb.MetricsRequest(after=(first - timedelta(minutes=1)).isoformat()), metadata=reader
    )
    got = [next(minutes) for _ in range(4)]  # closed minutes come at once
    minutes.cancel()
    assert [m.minute for m in got] == [
        (first + timedelta(minutes=i)).isoformat().replace("+00:00", "Z") for i in range(4)
    ]
    expected = [
        sum(
            1
            for d in documents
            if period_start(d["timestamp"], "1m") == first + timedelta(minutes=i)
        )
        for i in range(4)
    ]
    assert [m.total for m in got] == expected

    updates = stub.GetRealTimeAnalytics(
        pb.RealTimeRequest(since="10m", interval_seconds=1), metadata=reader
    )
    two = [next(updates), next(updates)]
    updates.cancel()
    assert [u.total for u in two] == [len(documents)] * 2
