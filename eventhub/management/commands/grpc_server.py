"""Serve EventHub over gRPC: ``EventService`` (publish, read), ``AnalyticsService`` and
``MetricsService``: ``python manage.py grpc_server [--port 50051]``."""

import logging
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand

from analytics.grpc_api.server import add_to_server
from core.metrics import serve_metrics
from events.grpc_api.server import build_server

# log lines, not the command's stdout: JSON like every other line of every process
logger = logging.getLogger(__name__)


class Command(BaseCommand):
    help = "Serve the gRPC EventService, AnalyticsService and MetricsService."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=settings.GRPC_HOST)
        parser.add_argument("--port", type=int, default=settings.GRPC_PORT)

    def handle(self, *args, host: str, port: int, **options):
        server, bound = build_server(f"{host}:{port}", others=(add_to_server,))
        server.start()
        logger.info("gRPC EventService, AnalyticsService, MetricsService on %s:%s", host, bound)
        if settings.GRPC_METRICS_PORT:
            serve_metrics(settings.GRPC_METRICS_PORT, settings.WORKER_METRICS_HOST)
            logger.info(
                "metrics on %s:%s", settings.WORKER_METRICS_HOST, settings.GRPC_METRICS_PORT
            )
        stopped = threading.Event()

        def stop(signum, frame):
            stopped.set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        stopped.wait()
        # let calls in progress finish (up to 10 s), refuse new ones
        server.stop(grace=10).wait()
        logger.info("gRPC server stopped")
