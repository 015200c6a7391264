"""WSGI entry point (gunicorn ``eventhub.wsgi``)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventhub.settings")
application = get_wsgi_application()
