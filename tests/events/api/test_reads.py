"""Reading stored events from MongoDB, written the way the pipeline writes them."""

from datetime import UTC, datetime, timedelta

import pytest

from core import mongo
from core.documents import event_document

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("clean_redis")]

T0 = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)


def store(db, n: int) -> list[dict]:
    documents = []
    for i in range(n):
        envelope = {
            "id": f"ev-{i:03d}",
            "source": "/shop" if i % 2 else "/billing",
            "type": "payment.failed" if i % 3 else "order.created",
            "specversion": "1.0",
            "time": (T0 + timedelta(minutes=i)).isoformat(),
            "subject": f"user-{i % 4}",
            "severity": 1 + i % 10,
            "data": {"amount": i, "note": "card declined" if i == 7 else "ok"},
            "metadata": {"region": "eu"},
        }
        documents.append(event_document(envelope, retention_days=30))
    db[mongo.EVENTS].insert_many(documents)
    mongo.ensure_indexes(db)
    return documents


@pytest.fixture
def reader(credentials):
    return credentials["reader"]


def test_events_are_listed_newest_first_with_a_cursor(client, reader, mongo_db):
    store(mongo_db, 25)
    seen, cursor = [], None
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = client.get("/api/v1/events", params, **reader).json()
        seen += [event["id"] for event in page["results"]]
        cursor = page["next"]
        if cursor is None:
            break
    assert seen == [f"ev-{i:03d}" for i in range(24, -1, -1)]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({"type": "order.created"}, [i for i in range(25) if i % 3 == 0]),
        ({"source": "/shop", "subject": "user-1"}, [i for i in range(25) if i % 4 == 1]),
        ({"user_id": "user-2"}, [i for i in range(25) if i % 4 == 2]),
        ({"severity_min": 9}, [i for i in range(25) if 1 + i % 10 >= 9]),
        ({"since": "2026-11-01T12:20:00Z"}, list(range(20, 25))),
        ({"until": "2026-11-01T12:02:00Z"}, [0, 1]),
    ],
)
def test_filters(client, reader, mongo_db, params, expected):
    store(mongo_db, 25)
    response = client.get("/api/v1/events", {**params, "limit": 100}, **reader)
    assert response.status_code == 200
    ids = sorted(int(event["id"][3:]) for event in response.json()["results"])
    assert ids == sorted(expected)


def test_one_event_and_its_shape(client, reader, mongo_db):
    store(mongo_db, 3)
    event = client.get("/api/v1/events/ev-001", **reader).json()
    assert event["type"] == "payment.failed" and event["source"] == "/shop"
    assert event["time"] == "2026-11-01T12:01:00Z"
    assert event["data"] == {"amount": 1, "note": "ok"}
    missing = client.get("/api/v1/events/ev-999", **reader)
    assert missing.status_code == 404 and missing["Content-Type"] == "application/problem+json"


def test_text_search_finds_payload_words(client, reader, mongo_db):
    store(mongo_db, 10)
    response = client.get("/api/v1/events/search", {"q": "declined"}, **reader)
    page = response.json()
    assert [event["id"] for event in page["results"]] == ["ev-007"]
    assert page["next"] is None


def test_search_pages_follow_the_cursor(client, reader, mongo_db):
    store(mongo_db, 10)  # every stored event's metadata says region "eu"
    seen: list[str] = []
    page = client.get("/api/v1/events/search", {"q": "eu", "limit": 4}, **reader).json()
    while True:
        assert len(page["results"]) <= 4
        seen += [event["id"] for event in page["results"]]
        if page["next"] is None:
            break
        page = client.get(
            "/api/v1/events/search", {"q": "eu", "limit": 4, "cursor": page["next"]}, **reader
        ).json()
    assert sorted(seen) == sorted(f"ev-{n:03d}" for n in range(10))


def test_bad_query_parameters_are_400_problems(client, reader, mongo_db):
    response = client.get("/api/v1/events", {"severity_min": 42, "since": "nope"}, **reader)
    assert response.status_code == 400
    pointers = {error["pointer"] for error in response.json()["errors"]}
    assert pointers == {"/severity_min", "/since"}
    # a cursor the API did not give out names no page: 404, as on every list
    refused = client.get("/api/v1/events", {"cursor": "%%%"}, **reader)
    assert refused.status_code == 404
    assert refused.json()["type"].endswith("/invalid-cursor")


def test_mongodb_down_gives_503(client, reader, settings, free_port):
    settings.MONGO_URL = f"mongodb://127.0.0.1:{free_port}/?directConnection=true"
    settings.MONGO_TIMEOUT_MS = 300
    mongo.close_client()
    try:
        response = client.get("/api/v1/events", **reader)
    finally:
        mongo.close_client()
    assert response.status_code == 503
    assert response["Retry-After"]


def test_a_forged_token_gets_a_sentence_not_a_repr(client, credentials):
    response = client.get("/api/v1/events", **credentials["forged"])
    assert response.status_code == 401
    assert response.json()["detail"].startswith(
        "Given token not valid for any token type: Token is"
    )
