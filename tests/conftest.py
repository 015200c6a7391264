"""Fixtures shared by the whole suite.

The services (PostgreSQL, Redis, MongoDB, Kafka) are the real ones that ``make test`` starts
with scripts/services.sh before pytest runs.
"""

from __future__ import annotations

import uuid

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.roles import Role
from core import kafka, mongo


@pytest.fixture(autouse=True, scope="session")
def _queue_marked():
    """The broker's queue mark is there: a sweep queues what is due, not every pending row as
    it does when the broker lost its queue (tests/webhooks/test_delivery.py)."""
    from webhooks.services.queueing import queue_marked

    queue_marked()


@pytest.fixture(autouse=True)
def _fresh_credentials():
    """Each test resolves its keys and tokens afresh (the process remembers them for
    AUTH_CACHE_SECONDS, across the rolled-back rows of earlier tests otherwise)."""
    from accounts.authentication import api_keys, token_users, tokens

    api_keys.forget()
    token_users.forget()
    tokens.forget()
    yield


@pytest.fixture
def mongo_db():
    """The test MongoDB database with its indexes, dropped after the test."""
    db = mongo.get_db()
    mongo.ensure_indexes(db)
    yield db
    mongo.get_client().drop_database(db.name)


@pytest.fixture
def store_event(mongo_db):
    """Store an event in MongoDB as the pipeline does (a ``payment.failed`` unless told
    otherwise by keyword); returns its id."""
    from core.documents import event_document

    def _store(**fields) -> str:
        envelope = {
            "id": str(uuid.uuid4()),
            "source": "/test",
            "specversion": "1.0",
            "type": "payment.failed",
            "time": "2026-11-20T10:00:00Z",
            "subject": "user-1",
            "data": {"amount": 5, "currency": "EUR"},
            **fields,
        }
        mongo_db[mongo.EVENTS].insert_one(event_document(envelope, retention_days=7))
        return envelope["id"]

    return _store


@pytest.fixture
def fresh_kafka_clients():
    """Drop cached Kafka clients before and after a test that changes Kafka settings."""
    kafka.reset_clients()
    yield
    kafka.reset_clients()


@pytest.fixture
def eager_tasks():
    """Celery runs queued tasks at once in this process (its own eager mode); the settings
    use the ``CELERY_`` namespace, so the flag is set under that name."""
    from eventhub.celery import app

    app.conf.update(CELERY_TASK_ALWAYS_EAGER=True)
    yield
    app.conf.update(CELERY_TASK_ALWAYS_EAGER=False)


@pytest.fixture
def unique_name() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def free_port() -> int:
    from tests.stack import free_port

    return free_port()


@pytest.fixture
def admin_client_logged_in(db, django_user_model) -> Client:
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    user.groups.add(Group.objects.get(name=Role.ADMIN))
    client = Client()
    client.force_login(user)
    return client


def _user_token(django_user_model, role: str, *, expired: bool = False) -> str:
    from datetime import timedelta

    from django.utils import timezone
    from rest_framework_simplejwt.tokens import AccessToken

    user, _ = django_user_model.objects.get_or_create(username=f"test-{role}")
    user.groups.add(Group.objects.get(name=role))
    token = AccessToken.for_user(user)
    if expired:
        past = timezone.now() - timedelta(hours=2)
        token.set_iat(at_time=past)
        token.set_exp(from_time=past, lifetime=timedelta(hours=1))
    return str(token)


@pytest.fixture
def roles(db) -> None:
    """The role groups: made by a migration, but transactional tests flush them away."""
    from django.apps import apps

    from accounts.roles import sync_role_groups

    if Group.objects.filter(name__in=Role.values).count() < len(Role.values):
        sync_role_groups(apps)


@pytest.fixture
def credentials(roles, django_user_model) -> dict[str, dict[str, str]]:
    """Request headers (Django test client form) for each kind of caller."""
    good = _user_token(django_user_model, Role.WRITER)
    expired = _user_token(django_user_model, Role.ADMIN, expired=True)
    head, payload, _signature = good.split(".")
    return {
        "anonymous": {},
        "reader": {"HTTP_AUTHORIZATION": f"Bearer {_user_token(django_user_model, Role.READER)}"},
        "writer": {"HTTP_AUTHORIZATION": f"Bearer {good}"},
        "admin": {"HTTP_AUTHORIZATION": f"Bearer {_user_token(django_user_model, Role.ADMIN)}"},
        "expired": {"HTTP_AUTHORIZATION": f"Bearer {expired}"},
        "forged": {"HTTP_AUTHORIZATION": f"Bearer {head}.{payload}.c2lnbmVkIGJ5IG5vYm9keQ"},
    }


@pytest.fixture
def writer_key(db) -> str:
    from accounts.services import api_key_create

    return api_key_create(name="test producer", role=Role.WRITER)[1]


@pytest.fixture
def event_type(db):
    """``payment.failed`` with a schema, known to the ingest registry."""
    from events.registry import registry
    from tests.events.factories import EventTypeFactory

    created = EventTypeFactory(
        name="payment.failed",
        schema={
            "type": "object",
            "required": ["amount", "currency"],
            "properties": {
                "amount": {"type": "number", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
            },
        },
        example={"amount": 1, "currency": "EUR"},
    )
    registry.invalidate()
    yield created
    registry.invalidate()


@pytest.fixture
def clean_redis():
    """Forget idempotency keys and rate counters of earlier tests."""
    from core.redis import get_redis

    client = get_redis()
    for pattern in ("eventhub:seen:*", "eventhub:idem-key:*", "eventhub-test:*throttle*"):
        keys = list(client.scan_iter(pattern, count=1000))
        if keys:
            client.delete(*keys)
    from django.core.cache import cache

    cache.clear()
    yield client


@pytest.fixture
def stack_scene(settings, unique_name, clean_redis, mongo_db):
    """For a test of the running stack (``tests.stack``): a topic and consumer group of the
    test's own, the ``order.created`` type (``data.n`` required), a subscription of
    ``order.*`` to a real receiver, and a writer key."""
    from accounts.services import api_key_create
    from events.registry import registry
    from subscriptions.services import subscription_add_secret
    from tests.events.factories import EventTypeFactory
    from tests.helpers import Receiver
    from tests.stack import Scene
    from tests.subscriptions.factories import SubscriptionFactory

    settings.KAFKA_TOPIC_EVENTS = f"{unique_name}.events"
    settings.PIPELINE_GROUP_ID = f"{unique_name}-pipeline"
    kafka.ensure_topics([kafka.TopicSpec(settings.KAFKA_TOPIC_EVENTS, 2)])
    EventTypeFactory(name="order.created", schema={"type": "object", "required": ["n"]})
    registry.invalidate()
    hook = Receiver()
    subscription = SubscriptionFactory(url=hook.url(), event_types=["order.*"])
    subscription_add_secret(subscription=subscription)
    yield Scene(hook=hook, key=api_key_create(name="stack test", role="writer")[1])
    hook.close()
    registry.invalidate()
