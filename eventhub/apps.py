"""The project's app: its management commands, and tracing set up at start (``core.tracing``,
when ``OTEL_ENABLED``) in every process that loads Django: the web, the Celery workers and
beat, the gRPC server, the commands."""

from django.apps import AppConfig


class EventHubConfig(AppConfig):
    name = "eventhub"
    verbose_name = "EventHub"

    def ready(self) -> None:
        from core import tracing

        tracing.configure()
