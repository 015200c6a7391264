"""Every answer under /api/ is problem+json, whoever answered: a view, Django's own 404 and 400
pages, its debug pages when DEBUG is on, a method the route does not take."""

import pytest

PROBLEM = "application/problem+json"

pytestmark = pytest.mark.django_db


def assert_problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    body = response.json()
    assert body["status"] == status
    assert body["type"].startswith("https://eventhub.dev/problems/")
    assert body["title"] and body["detail"]
    return body


@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/no-such-thing",
        "/api/nothing",
        "/api/v1/subscriptions/%C2%84",  # an id the route's pattern refuses
        "/api/v1/deliveries/abc/retry",
        "/api/v1/rules/-1",
        "/api/v1/event-types/UPPER",
    ],
)
@pytest.mark.parametrize("debug", [False, True])
def test_unknown_paths_and_malformed_ids_are_404_problems(
    client, credentials, settings, path, debug
):
    settings.DEBUG = debug
    body = assert_problem(client.get(path, **credentials["admin"]), 404)
    assert body["type"].endswith("/not-found")


@pytest.mark.parametrize("debug", [False, True])
def test_a_host_not_allowed_is_a_400_problem(client, settings, debug):
    settings.DEBUG = debug
    response = client.get("/api/v1/events", HTTP_HOST="evil.example")
    assert_problem(response, 400)


def test_a_method_the_route_does_not_take_is_a_405_problem_with_allow(client, credentials):
    response = client.delete("/api/v1/events", **credentials["admin"])
    assert_problem(response, 405)
    assert "GET" in response["Allow"]
