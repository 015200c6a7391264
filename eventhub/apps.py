"""The project's app: its management commands, templates and static files, and tracing set up
at start (``core.tracing``, when ``OTEL_ENABLED``) in every process that loads Django: the web,
the Celery workers and beat, the gRPC server, the commands. And the admin app whose site is the
operator console."""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class EventHubConfig(AppConfig):
    name = "eventhub"
    verbose_name = "EventHub"
    default = True

    def ready(self) -> None:
        from core import tracing

        tracing.configure()


class ConsoleAdminConfig(admin_apps.AdminConfig):
    """``django.contrib.admin`` with the console (``eventhub.console``) as ``admin.site``."""

    default = False
    default_site = "eventhub.console.OperatorConsole"
