"""Settings for the test suite: the application's settings, pointed at test-only names.

The tests use the same real services as ``make up`` (scripts/services.sh), but their own
PostgreSQL database (pytest-django's ``test_`` prefix), MongoDB database and Kafka topics, so a
running local stack is left undisturbed.
"""

import os
from urllib.parse import urlsplit, urlunsplit

os.environ.setdefault("DJANGO_DEBUG", "true")

from eventhub.settings import *  # noqa: E402,F403

MONGO_DB = os.environ.get("TEST_MONGO_DB", "eventhub_test")
# Subprocesses started by tests (the pipeline command) get their own topic and group this way.
KAFKA_TOPIC_EVENTS = os.environ.get("TEST_KAFKA_TOPIC_EVENTS", "test.eventhub.events")
PIPELINE_GROUP_ID = os.environ.get("TEST_PIPELINE_GROUP_ID", "test-eventhub-pipeline")
KAFKA_TOPIC_DLQ = "test.eventhub.dlq"
KAFKA_TOPIC_QUARANTINE = "test.eventhub.quarantine"
KAFKA_PARTITIONS = 3

# The tests' webhook receivers listen on loopback.
WEBHOOK_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
# ... and nothing a test generates may leave the machine: loopback is all webhooks reach.
WEBHOOK_EGRESS_NETWORKS = ["127.0.0.0/8", "::1/128"]

CACHES["default"]["KEY_PREFIX"] = "eventhub-test"  # noqa: F405
CELERY_TASK_ALWAYS_EAGER = False
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
STORAGES = {  # noqa: F405 - admin pages render without collectstatic
    **STORAGES,  # noqa: F405
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
# Static files are served by whitenoise after collectstatic; tests render pages without them.
MIDDLEWARE = [m for m in MIDDLEWARE if not m.startswith("whitenoise.")]  # noqa: F405
# Server threads started by tests (gRPC, live_server) close their connections after each call,
# so the test database can be dropped at the end.
DATABASES["default"]["CONN_MAX_AGE"] = 0  # noqa: F405

# Celery tasks queued by tests go to their own Redis database, away from a running stack's
# workers (a test that needs a worker starts one with these settings).
CELERY_BROKER_URL = os.environ.get(
    "TEST_CELERY_BROKER_URL",
    urlunsplit(urlsplit(REDIS_URL)._replace(path="/15")),  # noqa: F405
)

# Eager tasks in tests record outcomes before they return, so a test can look at once; the
# worker started by tests/webhooks/test_worker.py records in the background, as in production.
# (.env, read into the environment by the settings, may say otherwise for the stack: tests
# have their own variable)
WEBHOOK_RECORD_IN_BACKGROUND = os.environ.get("TEST_WEBHOOK_RECORD_IN_BACKGROUND") == "true"
