"""API keys and tokens: what a key carries, a revoked key, a token for a password."""

import json

import pytest

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_type", "clean_redis")]

EVENT = {"event_type": "payment.failed", "user_id": "u", "amount": 1, "data": {"currency": "EUR"}}
# Every caller against every operation: tests/test_role_matrix.py.


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
