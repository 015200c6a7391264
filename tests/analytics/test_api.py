"""The analytics REST API: roles, JSON and CSV, problem+json for bad parameters."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest

pytestmark = pytest.mark.django_db

ENDPOINTS = [
    "/api/v1/analytics/summary",
    "/api/v1/analytics/timeseries",
    "/api/v1/analytics/top-errors",
    "/api/v1/analytics/user-activity",
    "/api/v1/analytics/funnel?steps=user.login,order.created",
]


@pytest.mark.parametrize("url", ENDPOINTS)
@pytest.mark.parametrize(
    ("who", "status"),
    [("anonymous", 401), ("expired", 401), ("forged", 401), ("reader", 200), ("admin", 200)],
)
def test_every_endpoint_needs_a_reader(client, credentials, mongo_db, url, who, status):
    response = client.get(url, **credentials[who])
    assert response.status_code == status
    if status != 200:
        assert response["Content-Type"] == "application/problem+json"


def test_summary_answers_json_and_csv(client, credentials, store_generated):
    documents = store_generated(21, 200, span=timedelta(hours=20))
    reader = credentials["reader"]
    answer = client.get("/api/v1/analytics/summary?since=24h", **reader).json()
    assert answer["total"] == len(documents)
    assert answer["deliveries"]["total"] == 0 and answer["deliveries"]["success_rate"] is None
    for response in [
        client.get("/api/v1/analytics/summary?since=24h&format=csv", **reader),
        client.get("/api/v1/analytics/summary?since=24h", HTTP_ACCEPT="text/csv", **reader),
    ]:
        assert response.status_code == 200
        assert response["Content-Type"].startswith("text/csv")
        rows = list(csv.DictReader(io.StringIO(response.content.decode())))
        total = [row for row in rows if row["dimension"] == "total"]
        assert [int(row["count"]) for row in total] == [len(documents)]
        by_type = {row["key"]: int(row["count"]) for row in rows if row["dimension"] == "type"}
        assert by_type == {item["key"]: item["count"] for item in answer["by_type"]}


def test_timeseries_csv_has_a_row_per_bucket(client, credentials, store_generated):
    store_generated(22, 100, span=timedelta(hours=2))
    response = client.get(
        "/api/v1/analytics/timeseries?since=3h&bucket=1h&format=csv", **credentials["reader"]
    )
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert 3 <= len(rows) <= 4
    assert sum(int(row["count"]) for row in rows) == 100
    assert set(rows[0]) == {"bucket", "start", "count", "sum"}


def test_a_payload_filter_is_applied(client, credentials, store_generated):
    documents = store_generated(23, 300, span=timedelta(hours=2))
    query = json.dumps({"payload.amount": {"$gte": 1000}})
    answer = client.get(
        "/api/v1/analytics/timeseries",
        {"since": "3h", "bucket": "5m", "filter": query},
        **credentials["reader"],
    ).json()
    expected = sum(1 for d in documents if d["payload"].get("amount") == 1000)
    assert sum(point["count"] for point in answer["points"]) == expected > 0


# 400: a value the schema refuses (a type, a pattern, a choice); 422: well formed values that
# break a rule no schema states (parameters that exclude each other, a window too long)
@pytest.mark.parametrize(
    ("query", "pointer", "status"),
    [
        ("since=yesterday", "/since", 400),
        ("since=2h&from=2026-12-01T00:00:00Z", "/since", 422),
        ("from=2026-12-01T00:00:00Z&until=2026-11-01T00:00:00Z", "/until", 422),
        ("since=1000d", "/since", 422),
        ("bucket=2m", "/bucket", 400),
        ("bucket=1m&since=30d", "/bucket", 422),
        ("filter=not-json", "/filter", 422),
        ('filter={"$where": "1"}', "/filter", 422),
        ("type=,", "/type", 422),
    ],
)
def test_bad_parameters_are_a_problem_naming_them(
    client, credentials, query, pointer, status, mongo_db
):
    for suffix in ["", "&format=csv"]:
        response = client.get(
            f"/api/v1/analytics/timeseries?{query}{suffix}", **credentials["reader"]
        )
        assert response.status_code == status
        assert response["Content-Type"] == "application/problem+json"
        assert pointer in [error["pointer"] for error in response.json()["errors"]]


@pytest.mark.parametrize(
    ("url", "pointer", "status"),
    [
        ("/api/v1/analytics/funnel?steps=one", "/steps", 422),
        ("/api/v1/analytics/funnel", "/steps", 400),
        ("/api/v1/analytics/top-errors?limit=0", "/limit", 400),
        ("/api/v1/analytics/summary?field=payload.$x", "/field", 400),
    ],
)
def test_other_bad_parameters(client, credentials, url, pointer, status, mongo_db):
    response = client.get(url, **credentials["reader"])
    assert response.status_code == status
    assert pointer in [error["pointer"] for error in response.json()["errors"]]


def test_user_activity_and_funnel_over_http(client, credentials, store_generated):
    store_generated(24, 400, span=timedelta(hours=10))
    reader = credentials["reader"]
    one = client.get("/api/v1/analytics/user-activity?since=12h&subject=alice", **reader).json()
    assert [row["subject"] for row in one] == ["alice"]
    funnel = client.get(
        "/api/v1/analytics/funnel?since=12h&steps=user.login,order.created&format=csv", **reader
    )
    rows = list(csv.DictReader(io.StringIO(funnel.content.decode())))
    assert [row["step"] for row in rows] == ["user.login", "order.created"]
    assert int(rows[0]["subjects"]) >= int(rows[1]["subjects"])


def test_mongodb_down_is_a_503(client, credentials, settings, monkeypatch):
    from core import mongo

    mongo.close_client()
    monkeypatch.setattr(
        settings, "MONGO_URL", "mongodb://127.0.0.1:1/?serverSelectionTimeoutMS=200"
    )
    monkeypatch.setattr(settings, "MONGO_TIMEOUT_MS", 200)
    try:
        response = client.get("/api/v1/analytics/summary", **credentials["reader"])
    finally:
        mongo.close_client()
    assert response.status_code == 503
    assert response["Retry-After"]


def test_graphql_gives_the_rest_answers(client, credentials, store_generated):
    store_generated(25, 300, span=timedelta(hours=20))
    reader = credentials["reader"]
    query = """query($filter: JSONString) {
      analyticsSummary(since: "24h") { total byType { key count } errors deliveries { total } }
      analyticsTimeseries(since: "24h", bucket: "1h", type: "order.*", filter: $filter) {
        bucket points { start count sum } }
      analyticsTopErrors(since: "24h", limit: 3) { type source code count firstSeen }
      analyticsUserActivity(since: "24h", subject: "bob") { subject count types { type count } }
      analyticsFunnel(since: "24h", steps: ["user.login", "order.created"]) {
        steps { step subjects conversion } }
    }"""
    variables = {"filter": json.dumps({"payload.amount": {"$gte": 1}})}
    result = client.post(
        "/graphql",
        json.dumps({"query": query, "variables": variables}),
        content_type="application/json",
        **reader,
    ).json()
    assert "errors" not in result, result
    data = result["data"]
    rest = {
        "summary": client.get("/api/v1/analytics/summary?since=24h", **reader).json(),
        "series": client.get(
            "/api/v1/analytics/timeseries",
            {"since": "24h", "bucket": "1h", "type": "order.*", "filter": variables["filter"]},
            **reader,
        ).json(),
        "errors": client.get("/api/v1/analytics/top-errors?since=24h&limit=3", **reader).json(),
        "funnel": client.get(
            "/api/v1/analytics/funnel?since=24h&steps=user.login,order.created", **reader
        ).json(),
    }
    assert data["analyticsSummary"]["total"] == rest["summary"]["total"] == 300
    assert data["analyticsSummary"]["byType"] == rest["summary"]["by_type"]
    assert [p["count"] for p in data["analyticsTimeseries"]["points"]] == [
        p["count"] for p in rest["series"]["points"]
    ]
    assert [e["count"] for e in data["analyticsTopErrors"]] == [e["count"] for e in rest["errors"]]
    assert [s["subjects"] for s in data["analyticsFunnel"]["steps"]] == [
        s["subjects"] for s in rest["funnel"]["steps"]
    ]
    assert data["analyticsUserActivity"][0]["subject"] == "bob"


def test_graphql_bad_arguments_are_bad_input(client, credentials, mongo_db):
    result = client.post(
        "/graphql",
        json.dumps({"query": '{ analyticsTimeseries(since: "2h", bucket: "7m") { bucket } }'}),
        content_type="application/json",
        **credentials["reader"],
    ).json()
    assert result["errors"][0]["extensions"]["code"] == "BAD_INPUT"
    assert result["errors"][0]["extensions"]["errors"][0]["pointer"] == "/bucket"


@pytest.mark.parametrize(
    "path", ["/api/v1/analytics/top-errors", "/api/v1/analytics/user-activity"]
)
def test_csv_with_no_rows_is_the_header_line(client, credentials, path, mongo_db):
    # found by schemathesis: an empty body lost its Content-Type
    response = client.get(f"{path}?format=csv&since=1h", **credentials["reader"])
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/csv")
    header = response.content.decode().strip()
    assert header and "," in header
