"""The baseline's Celery app, configured from its Django settings (``CELERY_*``)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "webhook_baseline.settings")

app = Celery("webhook_baseline")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
