"""Password guessing on the token endpoint and the admin login: locked per user name and
address at the LOGIN_FAILURE_LIMIT-th failure, with a clear answer (problem+json on the API)."""

import json

import pytest

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


@pytest.fixture
def ana(django_user_model):
    return django_user_model.objects.create_user("ana", password=PASSWORD, is_staff=True)


def token(client, username: str, password: str, address: str = "10.0.0.1"):
    return client.post(
        "/api/v1/auth/token",
        json.dumps({"username": username, "password": password}),
        content_type="application/json",
        REMOTE_ADDR=address,
    )


def test_the_token_endpoint_locks_a_user_name_and_address_after_the_limit(client, ana, settings):
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        assert token(client, "ana", "guess").status_code == 401
    assert token(client, "ana", "guess").status_code == 429  # the failure that reaches it

    locked = token(client, "ana", PASSWORD)  # even the right password, from this address
    assert locked.status_code == 429
    assert locked["Content-Type"] == "application/problem+json"
    assert locked["Retry-After"] == str(settings.LOGIN_LOCKOUT_MINUTES * 60)
    body = locked.json()
    assert body["type"].endswith("/login-locked") and body["status"] == 429
    assert "Too many failed logins" in body["detail"] and "minutes" in body["detail"]
    assert PASSWORD not in locked.content.decode()

    # another address, or another user name, is not locked out by these failures
    assert token(client, "ana", PASSWORD, address="10.0.0.2").status_code == 200
    assert token(client, "bob", "guess").status_code == 401


def test_a_success_before_the_limit_starts_the_count_again(client, ana, settings):
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        assert token(client, "ana", "guess").status_code == 401
    assert token(client, "ana", PASSWORD).status_code == 200
    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        assert token(client, "ana", "guess").status_code == 401
    assert token(client, "ana", PASSWORD).status_code == 200


def test_the_admin_login_locks_too_with_a_clear_message(client, ana, settings):
    def login(password: str):
        return client.post(
            "/admin/login/?next=/admin/",
            {"username": "ana", "password": password},
            REMOTE_ADDR="10.0.0.3",
        )

    for _ in range(settings.LOGIN_FAILURE_LIMIT - 1):
        refused = login("guess")
        assert refused.status_code == 200 and b"correct username and password" in refused.content
    assert login("guess").status_code == 429
    locked = login(PASSWORD)
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    assert "_auth_user_id" not in client.session
