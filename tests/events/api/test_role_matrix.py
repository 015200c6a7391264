"""Every caller against every endpoint: who gets in, who is refused, and how."""

import json

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_type", "clean_redis")]

EVENT = {"event_type": "payment.failed", "user_id": "u", "amount": 1, "data": {"currency": "EUR"}}
NEW_TYPE = {"name": "user.signed_up", "schema": {"type": "object"}}

# (method, path, body, least role that may call it)
ENDPOINTS = [
    ("get", "/api/v1/events", None, "reader"),
    ("get", "/api/v1/events/search?q=card", None, "reader"),
    ("get", "/api/v1/events/no-such-id", None, "reader"),
    ("post", "/api/v1/events", EVENT, "writer"),
    ("post", "/api/v1/events/async", EVENT, "writer"),
    ("post", "/api/v1/events/batch", [EVENT], "writer"),
    ("get", "/api/v1/event-types", None, "reader"),
    ("get", "/api/v1/event-types/payment.failed", None, "reader"),
    ("post", "/api/v1/event-types", NEW_TYPE, "admin"),
    ("patch", "/api/v1/event-types/payment.failed", {"description": "x"}, "admin"),
    ("get", "/api/v1/rules", None, "reader"),
    (
        "post",
        "/api/v1/rules",
        {"name": "r", "conditions": {}, "actions": [{"type": "notify"}]},
        "admin",
    ),
]
CALLERS = ["anonymous", "reader", "writer", "admin", "expired", "forged"]
RANK = {"reader": 1, "writer": 2, "admin": 3}


@pytest.mark.parametrize("caller", CALLERS)
@pytest.mark.parametrize(
    ("method", "path", "body", "least"), ENDPOINTS, ids=[f"{m} {p}" for m, p, _, _ in ENDPOINTS]
)
def test_role_matrix(client, credentials, caller, method, path, body, least, mongo_db):
    kwargs = dict(credentials[caller])
    if body is not None:
        kwargs.update(data=json.dumps(body), content_type="application/json")
    response = getattr(client, method)(path, **kwargs)

    if caller in ("anonymous", "expired", "forged"):
        expected = 401
    elif RANK[caller] < RANK[least]:
        expected = 403
    else:
        expected = None
    if expected is None:
        assert response.status_code not in (401, 403), response.content
        assert response.status_code < 500, response.content
    else:
        assert response.status_code == expected, response.content
        assert response["Content-Type"] == "application/problem+json"
        assert response.json()["status"] == expected
    if expected == 401:
        assert response.has_header("WWW-Authenticate")


def test_an_api_key_carries_its_role(client, db):
    from accounts.services import api_key_create

    reader_key = api_key_create(name="dashboards", role="reader")[1]
    refused = client.post(
        "/api/v1/events",
        json.dumps(EVENT),
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {reader_key}",
    )
    assert refused.status_code == 403
    allowed = client.get("/api/v1/event-types", HTTP_X_API_KEY=reader_key)
    assert allowed.status_code == 200


def test_a_revoked_api_key_is_refused(client, writer_key):
    from accounts.models import ApiKey

    ApiKey.objects.update(active=False)
    response = client.get("/api/v1/event-types", HTTP_X_API_KEY=writer_key)
    assert response.status_code == 401
    assert response.json()["type"].endswith("/invalid-api-key")


def test_a_token_is_obtained_and_refreshed_with_a_password(client, django_user_model):
    from django.contrib.auth.models import Group

    user = django_user_model.objects.create_user("ana", password="s3cret-pass")
    user.groups.add(Group.objects.get(name="reader"))

    def post(path, body):  # the API reads JSON only
        return client.post(path, json.dumps(body), content_type="application/json")

    pair = post("/api/v1/auth/token", {"username": "ana", "password": "s3cret-pass"})
    assert pair.status_code == 200
    access = pair.json()["access"]
    assert client.get("/api/v1/events", HTTP_AUTHORIZATION=f"Bearer {access}").status_code != 401
    refreshed = post("/api/v1/auth/token/refresh", {"refresh": pair.json()["refresh"]})
    assert refreshed.status_code == 200 and refreshed.json()["access"]
    wrong = post("/api/v1/auth/token", {"username": "ana", "password": "nope"})
    assert wrong.status_code == 401
    assert wrong["Content-Type"] == "application/problem+json"
