"""Health and readiness against the real services, and what happens when one is down."""

import pytest

from core import mongo

pytestmark = pytest.mark.django_db


def test_health_answers_while_the_process_lives(client):
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_ready_reports_four_green_dependencies_with_latency(client):
    response = client.get("/ready")
    assert response.status_code == 200, response.content
    checks = response.json()["checks"]
    assert set(checks) == {"postgres", "redis", "kafka", "mongodb"}
    for name, check in checks.items():
        assert check["status"] == "ok", (name, check)
        assert check["latency_ms"] >= 0


@pytest.mark.parametrize("name", ["postgres", "redis", "kafka", "mongodb"])
def test_one_dependency_can_be_checked_alone(client, name):
    response = client.get(f"/health/{name}")
    assert response.status_code == 200
    assert list(response.json()["checks"]) == [name]


def test_an_unknown_dependency_is_a_problem_404(client):
    response = client.get("/health/cassandra")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert "cassandra" in response.json()["detail"]


def _assert_down(response, name):
    assert response.status_code == 503
    assert response["Content-Type"] == "application/problem+json"
    assert int(response["Retry-After"]) > 0
    body = response.json()
    assert body["status"] == 503
    assert body["checks"][name]["status"] == "down"
    assert name in body["detail"]


def test_redis_down_gives_503_with_retry_after(client, settings, free_port):
    settings.REDIS_URL = f"redis://127.0.0.1:{free_port}/0"
    settings.HEALTH_CHECK_TIMEOUT = 0.5
    _assert_down(client.get("/ready"), "redis")


def test_kafka_down_gives_503(client, settings, free_port, fresh_kafka_clients):
    settings.KAFKA_BOOTSTRAP_SERVERS = f"127.0.0.1:{free_port}"
    settings.HEALTH_CHECK_TIMEOUT = 0.5
    _assert_down(client.get("/health/kafka"), "kafka")


def test_mongodb_down_gives_503(client, settings, free_port):
    settings.MONGO_URL = f"mongodb://127.0.0.1:{free_port}/?directConnection=true"
    settings.MONGO_TIMEOUT_MS = 300
    mongo.close_client()
    try:
        _assert_down(client.get("/health/mongodb"), "mongodb")
    finally:
        mongo.close_client()


def test_unknown_pages_are_problems_too(client):
    response = client.get("/no/such/page")
    assert response.status_code == 404
    assert response.json()["type"].endswith("/not-found")
