"""Minimal Django settings for django-webhook, as its README sets it up: the app installed,
``DJANGO_WEBHOOK["MODELS"]`` naming the models whose signals fire webhooks, and a Celery
worker. Everything else is left at the package's defaults (events stored, cached lookups)."""

import os

import dj_database_url

SECRET_KEY = "bench-only-not-secret"
DEBUG = False
USE_TZ = True
TIME_ZONE = "UTC"
INSTALLED_APPS = [
    "django.contrib.contenttypes",
    "django.contrib.auth",
    "django_webhook",
    "webhook_baseline",
]
DATABASES = {
    "default": dj_database_url.parse(
        os.environ.get(
            "BASELINE_DATABASE_URL",
            "postgresql://postgres@127.0.0.1:5432/eventhub_bench_baseline",
        ),
        conn_max_age=60,
    )
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/14")
# its own queue, so it never shares one with EventHub's workers on the same broker database
CELERY_TASK_DEFAULT_QUEUE = "bench-django-webhook"

DJANGO_WEBHOOK = {"MODELS": ["webhook_baseline.Order"]}
