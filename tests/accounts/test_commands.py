from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from accounts.models import ApiKey, hash_api_key

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out, stderr=StringIO())
    return out.getvalue().strip()


def test_issue_token_prints_a_bearer_token_that_works(client):
    header = run("issue_token", "--role", "reader", "--ttl", "30m")
    assert header.startswith("Bearer ")
    assert client.get("/api/v1/event-types", HTTP_AUTHORIZATION=header).status_code == 200


def test_an_expired_token_is_refused(client):
    header = run("issue_token", "--role", "admin", "--expired")
    response = client.get("/api/v1/event-types", HTTP_AUTHORIZATION=header)
    assert response.status_code == 401
    assert "expired" in response.content.decode().lower()


def test_issue_token_rejects_a_bad_ttl():
    with pytest.raises(CommandError, match="--ttl"):
        run("issue_token", "--role", "reader", "--ttl", "soon")


def test_create_api_key_prints_the_key_once_and_stores_its_hash():
    key = run("create_api_key", "ci producer", "--role", "writer")
    assert key.startswith("ehk_")
    stored = ApiKey.objects.get(name="ci producer")
    assert stored.key_hash == hash_api_key(key) and stored.role == "writer"
