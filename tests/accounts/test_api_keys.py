import pytest
from django.contrib.auth.models import Group

from accounts.models import ApiKey, hash_api_key
from accounts.roles import Role
from accounts.services import api_key_create

pytestmark = pytest.mark.django_db


def test_only_the_hash_of_a_new_key_is_stored():
    api_key, plaintext = api_key_create(name="billing producer", role=Role.WRITER)
    assert plaintext.startswith("ehk_") and len(plaintext) > 40
    stored = ApiKey.objects.filter(pk=api_key.pk).values().get()
    assert plaintext not in [str(value) for value in stored.values()]
    assert stored["key_hash"] == hash_api_key(plaintext)
    assert plaintext.startswith(stored["prefix"])
    assert api_key.is_usable()


def test_two_keys_never_share_a_prefix_or_hash():
    keys = [api_key_create(name=f"k{i}", role=Role.READER)[0] for i in range(20)]
    assert len({k.prefix for k in keys}) == 20
    assert len({k.key_hash for k in keys}) == 20


def test_the_roles_exist_with_their_permissions():
    def codes(role):
        return set(Group.objects.get(name=role).permissions.values_list("codename", flat=True))

    reader, writer, admin = codes(Role.READER), codes(Role.WRITER), codes(Role.ADMIN)
    assert {"view_delivery", "view_eventtype", "view_subscription"} <= reader
    assert "publish_event" not in reader and "view_apikey" not in reader
    assert not {c for c in reader if not c.startswith("view_")}
    assert writer == reader | {"publish_event"}
    assert {"change_subscription", "add_rule", "delete_eventtype", "add_apikey"} <= admin
    assert "publish_event" in admin


def test_an_empty_api_key_header_is_refused_even_beside_a_valid_token(client, credentials):
    # a present but empty X-API-Key is a credential that fails, not one to skip for the JWT
    response = client.get("/api/v1/event-types", HTTP_X_API_KEY="", **credentials["admin"])
    assert response.status_code == 401
    assert response.json()["type"].endswith("/invalid-api-key")
