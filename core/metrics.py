"""Prometheus metrics every process shares: its uptime, errors by component, MongoDB
operations, and the ``/metrics`` endpoint of processes that are not the web.

Each process exports its own counters; one scrape config (``docs/prometheus/prometheus.yml``)
covers the web, the pipeline worker, the webhook worker and the gRPC server. Labels are bounded
sets (a component, an operation's name), never ids. The web's gunicorn workers share one
``/metrics`` through prometheus_client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

from django.conf import settings
from prometheus_client import REGISTRY, CollectorRegistry, Counter, start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from pymongo import monitoring

STARTED_AT = time.time()

ERRORS = Counter(
    "errors_total",
    "Log records at ERROR or above, by component (the top package of the logger's name)",
    ["component"],
)
# EventHub's own components start at 0, so that a rate is there before the first error
for _component in ("eventhub", "events", "pipeline", "webhooks", "subscriptions", "rules", "core"):
    ERRORS.labels(_component)
MONGO_OPS = Counter("mongo_ops_total", "MongoDB commands that succeeded, by command", ["op"])


class UptimeCollector(Collector):
    """``service_uptime_seconds{service}``: seconds since this process started."""

    def collect(self) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "service_uptime_seconds", "Seconds since the process started", labels=["service"]
        )
        family.add_metric([settings.SERVICE_NAME], time.time() - STARTED_AT)
        yield family


class ErrorCounter(logging.Handler):
    """Counts every record at ERROR or above in ``errors_total{component}`` (installed on the
    root logger by the settings' LOGGING): whatever logs an error is counted, in every
    process."""

    def __init__(self) -> None:
        super().__init__(level=logging.ERROR)

    def emit(self, record: logging.LogRecord) -> None:
        ERRORS.labels(record.name.partition(".")[0] or "root").inc()


class MongoCommands(monitoring.CommandListener):
    """``mongo_ops_total{op}``: every MongoDB command the process's client ran (insert, find,
    aggregate, ...); a failed command is logged by its caller, and counted as an error."""

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        MONGO_OPS.labels(event.command_name).inc()

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        ERRORS.labels("mongodb").inc()


_served_lock = threading.Lock()
_served = False


def serve_metrics(port: int, host: str) -> None:
    """Serve this process's metrics on ``host:port`` (Celery workers, the gRPC server), with
    its uptime; once per process."""
    global _served
    with _served_lock:
        if _served:
            return
        REGISTRY.register(UptimeCollector())
        start_http_server(port, addr=host)
        _served = True


def scrape_registry(*collectors: Collector) -> CollectorRegistry:
    """A registry of collectors that compute their values when scraped."""
    registry = CollectorRegistry(auto_describe=False)
    for collector in collectors:
        registry.register(collector)
    return registry
