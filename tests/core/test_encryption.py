"""Secrets at rest: the raw PostgreSQL tables hold tokens, never a signing secret or a header
value; keys rotate (several valid, the newest writes, a command re-encrypts); the migration
encrypts rows written before it."""

from __future__ import annotations

import json

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.db import connection

from core.encryption import SecretUnreadable
from subscriptions.models import SigningSecret, Subscription
from tests.subscriptions.factories import SubscriberFactory, SubscriptionFactory

CREDENTIAL = "Bearer hunter2-not-for-the-database"


def raw(sql: str) -> list[tuple]:
    with connection.cursor() as cursor:
        cursor.execute(sql)
        return cursor.fetchall()


def raw_text() -> str:
    """Everything the two tables hold, as text."""
    rows = raw("SELECT * FROM subscriptions_signingsecret") + raw(
        "SELECT * FROM subscriptions_subscription"
    )
    return json.dumps(rows, default=str)


@pytest.mark.django_db
def test_the_raw_tables_hold_no_secret_and_no_header_value(client, credentials):
    response = client.post(
        "/api/v1/subscriptions",
        {
            "subscriber": SubscriberFactory().pk,
            "url": "http://127.0.0.1:9/hook",
            "event_types": ["payment.*"],
            "headers": {"Authorization": CREDENTIAL},
        },
        content_type="application/json",
        **credentials["admin"],
    )
    assert response.status_code == 201, response.content
    secret = response.json()["secret"]
    rotated = client.post(
        f"/api/v1/subscriptions/{response.json()['id']}/rotate-secret",
        {},
        content_type="application/json",
        **credentials["admin"],
    ).json()["secret"]

    stored = raw_text()
    for plain in (secret, rotated, "hunter2", secret.removeprefix("whsec_")):
        assert plain not in stored
    ((token,),) = raw("SELECT headers FROM subscriptions_subscription")
    assert token.startswith("gAAAAA")  # a Fernet token
    # ... which the application reads back as it was written
    subscription = Subscription.objects.get()
    assert subscription.headers == {"Authorization": CREDENTIAL}
    assert set(subscription.valid_secrets()) == {secret, rotated}


@pytest.mark.django_db
def test_keys_rotate_and_the_command_rewrites_under_the_newest(settings, capsys):
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    settings.FIELD_ENCRYPTION_KEYS = [old]
    subscription = SubscriptionFactory(headers={"X-Token": "t0ken"})
    SigningSecret.objects.create(subscription=subscription, secret="whsec_c2VjcmV0")

    settings.FIELD_ENCRYPTION_KEYS = [new, old]  # both decrypt, the new one writes
    assert Subscription.objects.get().headers == {"X-Token": "t0ken"}
    call_command("reencrypt_secrets")
    printed = capsys.readouterr().out
    assert "subscriptions.SigningSecret.secret: 1 re-encrypted" in printed
    assert "subscriptions.Subscription.headers: 1 re-encrypted" in printed
    assert "t0ken" not in printed and "whsec_" not in printed

    settings.FIELD_ENCRYPTION_KEYS = [new]  # the old key dropped: everything still reads
    assert Subscription.objects.get().headers == {"X-Token": "t0ken"}
    assert SigningSecret.objects.get().secret == "whsec_c2VjcmV0"
    ((token,),) = raw("SELECT secret FROM subscriptions_signingsecret")
    assert Fernet(new.encode()).decrypt(token.encode()) == b"whsec_c2VjcmV0"

    settings.FIELD_ENCRYPTION_KEYS = [old]  # a key that never wrote them opens nothing
    with pytest.raises(SecretUnreadable) as caught:
        SigningSecret.objects.get()
    assert "whsec_" not in str(caught.value) and "SigningSecret.secret" in str(caught.value)


@pytest.mark.django_db(transaction=True)
def test_the_migration_encrypts_the_rows_written_before_it(roles):
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    before = [("subscriptions", "0002_endpoint_health")]
    executor.migrate(before)
    try:
        old = executor.loader.project_state(before).apps
        subscriber = old.get_model("subscriptions", "Subscriber").objects.create(name="legacy")
        subscription = old.get_model("subscriptions", "Subscription").objects.create(
            subscriber=subscriber,
            url="http://127.0.0.1:9/hook",
            event_types=["*"],
            headers={"Authorization": CREDENTIAL},
        )
        old.get_model("subscriptions", "SigningSecret").objects.create(
            subscription=subscription, secret="whsec_bGVnYWN5LXNlY3JldA=="
        )
        assert "hunter2" in raw_text()  # plain text, as before this change
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

    assert "hunter2" not in raw_text() and "bGVnYWN5" not in raw_text()
    migrated = Subscription.objects.get()
    assert migrated.headers == {"Authorization": CREDENTIAL}
    assert migrated.valid_secrets() == ["whsec_bGVnYWN5LXNlY3JldA=="]
