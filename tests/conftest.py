"""Fixtures shared by the whole suite.

The services (PostgreSQL, Redis, MongoDB, Kafka) are the real ones that ``make test`` starts
with scripts/services.sh before pytest runs.
"""

from __future__ import annotations

import socket
import uuid

import pytest
from django.contrib.auth.models import Group
from django.test import Client

from accounts.roles import Role
from eventhub import kafka, mongo


@pytest.fixture
def mongo_db():
    """The test MongoDB database, emptied after the test."""
    db = mongo.get_db()
    yield db
    mongo.get_client().drop_database(db.name)


@pytest.fixture
def fresh_kafka_clients():
    """Drop cached Kafka clients before and after a test that changes Kafka settings."""
    kafka.reset_clients()
    yield
    kafka.reset_clients()


@pytest.fixture
def unique_name() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def admin_client_logged_in(db, django_user_model) -> Client:
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw")
    user.groups.add(Group.objects.get(name=Role.ADMIN))
    client = Client()
    client.force_login(user)
    return client
