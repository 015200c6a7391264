"""What a process remembers of credentials, and the rate limit: a key revoked or a user
deactivated elsewhere is refused within AUTH_CACHE_SECONDS; the limit holds across processes
and keeps O(1) state per caller."""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.contrib.auth.models import Group
from rest_framework_simplejwt.tokens import AccessToken

from accounts.authentication import api_keys, token_users, tokens
from accounts.models import ApiKey
from accounts.services import api_key_create, api_key_revoke

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_type", "clean_redis")]

ROOT = Path(__file__).resolve().parents[2]
BOUND = 1.0


@pytest.fixture
def short_bound(settings):
    settings.AUTH_CACHE_SECONDS = BOUND
    api_keys.forget()  # read the bound again
    token_users.forget()


def read(client, **credentials):
    return client.get("/api/v1/event-types", **credentials).status_code


def test_a_key_revoked_by_another_process_is_refused_within_the_bound(client, short_bound):
    key = api_key_create(name="producer", role="writer")[1]
    assert read(client, HTTP_X_API_KEY=key) == 200
    ApiKey.objects.update(active=False)  # as another process's revocation: no word reaches us
    assert read(client, HTTP_X_API_KEY=key) == 200, "remembered within the bound"
    time.sleep(BOUND + 0.1)
    assert read(client, HTTP_X_API_KEY=key) == 401


def test_a_key_revoked_here_is_refused_at_once(client, short_bound):
    api_key, key = api_key_create(name="producer", role="writer")
    assert read(client, HTTP_X_API_KEY=key) == 200
    api_key_revoke(api_key=api_key)
    assert read(client, HTTP_X_API_KEY=key) == 401


def test_an_expiry_is_checked_on_every_request(client, short_bound):
    from datetime import timedelta

    from django.utils import timezone

    api_key, key = api_key_create(name="producer", role="writer")
    assert read(client, HTTP_X_API_KEY=key) == 200
    cached = api_keys.get_or_load(api_key.key_hash, lambda: None)
    cached.expires_at = timezone.now() - timedelta(seconds=1)
    assert read(client, HTTP_X_API_KEY=key) == 401


def test_a_deactivated_user_is_refused_within_the_bound(client, short_bound, django_user_model):
    user = django_user_model.objects.create_user("ana", password="pw-ana-123")
    user.groups.add(Group.objects.get(name="reader"))
    bearer = f"Bearer {AccessToken.for_user(user)}"
    assert read(client, HTTP_AUTHORIZATION=bearer) == 200
    django_user_model.objects.filter(pk=user.pk).update(is_active=False)
    assert read(client, HTTP_AUTHORIZATION=bearer) == 200, "remembered within the bound"
    time.sleep(BOUND + 0.1)
    assert read(client, HTTP_AUTHORIZATION=bearer) == 401


HITS_ELSEWHERE = """
import django, json, sys
django.setup()
from limits import RateLimitItemPerSecond
from accounts.throttling import get_limiter
item = RateLimitItemPerSecond(10, 60)
print(json.dumps([get_limiter().hit(item, "read", sys.argv[1]) for _ in range(6)]))
"""


def test_the_rate_limit_holds_across_processes(client, settings):
    from rest_framework.settings import api_settings
    from rest_framework.throttling import SimpleRateThrottle

    rates = dict(SimpleRateThrottle.THROTTLE_RATES)  # the throttles read their class's copy
    settings.REST_FRAMEWORK = {
        **settings.REST_FRAMEWORK,
        "DEFAULT_THROTTLE_RATES": {"publish": "10/min", "read": "10/min"},
    }
    SimpleRateThrottle.THROTTLE_RATES = api_settings.DEFAULT_THROTTLE_RATES
    api_key, key = api_key_create(name="producer", role="writer")
    try:
        other = subprocess.run(
            [sys.executable, "-c", HITS_ELSEWHERE, f"key:{api_key.prefix}"],
            cwd=ROOT,
            env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        assert json.loads(other.stdout.strip().splitlines()[-1]) == [True] * 6
        here = [read(client, HTTP_X_API_KEY=key) for _ in range(6)]
    finally:
        SimpleRateThrottle.THROTTLE_RATES = rates
    assert here == [200] * 4 + [429] * 2  # 10 a minute between both processes


def test_the_rate_limit_keeps_constant_state_per_caller(client, clean_redis):
    api_key, key = api_key_create(name="producer", role="writer")
    for _ in range(80):  # under the read rate (100/s)
        assert read(client, HTTP_X_API_KEY=key) == 200
    kept = list(clean_redis.scan_iter(f"*throttle*{api_key.prefix}*"))
    assert 1 <= len(kept) <= 2  # this window's counter and the previous one's
    assert all(clean_redis.type(name) == b"string" for name in kept)
    assert all(clean_redis.strlen(name) <= 4 for name in kept)  # a count, not a history


def test_a_remembered_token_is_refused_once_it_expires(client, django_user_model, settings):
    from datetime import timedelta

    settings.AUTH_CACHE_SECONDS = 60.0
    tokens.forget()
    user = django_user_model.objects.create_user("ben", password="pw-ben-123")
    user.groups.add(Group.objects.get(name="reader"))
    token = AccessToken.for_user(user)
    token.set_exp(lifetime=timedelta(seconds=1))
    bearer = f"Bearer {token}"
    assert read(client, HTTP_AUTHORIZATION=bearer) == 200
    time.sleep(1.2)
    refused = client.get("/api/v1/event-types", HTTP_AUTHORIZATION=bearer)
    assert refused.status_code == 401
    assert "expired" in refused.json()["detail"].lower()
