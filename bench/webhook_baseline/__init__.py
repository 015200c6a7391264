"""django-webhook configured as its documentation intends, as the baseline of P4.

A minimal Django project of its own (``settings``, a Celery app, one model whose saves fire
webhooks) so that the package runs as a user would run it, apart from EventHub.
"""

from webhook_baseline.celery import app as celery_app

__all__ = ["celery_app"]
