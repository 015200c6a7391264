"""EventHub's top layer, the Django project: settings, URLs, the GraphQL schema, health checks
and the Celery app, composing the apps. Nothing below imports it (see .importlinter)."""

from core import __version__
from eventhub.celery import app as celery_app

__all__ = ["__version__", "celery_app"]
