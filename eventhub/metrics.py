"""The web's ``/metrics``: every gunicorn worker's counters (prometheus_client's multiprocess
mode, when ``PROMETHEUS_MULTIPROC_DIR`` is set, as ``make up`` does), the process's uptime,
the delivery backlog read from PostgreSQL (``webhooks.backlog``) and whether each dependency
answers ``/ready``'s checks (``dependency_up``)."""

from __future__ import annotations

import os
from collections.abc import Iterable

from django.http import HttpRequest, HttpResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    generate_latest,
    multiprocess,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from core.metrics import UptimeCollector, scrape_registry
from eventhub.health import CHECKS, run_check
from webhooks.backlog import BacklogCollector


class DependencyCollector(Collector):
    """``dependency_up{dependency}`` and ``dependency_check_seconds{dependency}``: the checks
    of ``/ready``, run at each scrape (each bounded by ``HEALTH_CHECK_TIMEOUT``)."""

    def collect(self) -> Iterable[Metric]:
        up = GaugeMetricFamily(
            "dependency_up", "1 while the dependency answers", labels=["dependency"]
        )
        latency = GaugeMetricFamily(
            "dependency_check_seconds", "How long its check took", labels=["dependency"]
        )
        for name in CHECKS:
            result = run_check(name)
            up.add_metric([name], 1.0 if result["status"] == "ok" else 0.0)
            latency.add_metric([name], result["latency_ms"] / 1000)
        yield up
        yield latency


def _process_registry() -> CollectorRegistry:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)
        return registry
    return REGISTRY


@never_cache
@require_GET
def metrics(request: HttpRequest) -> HttpResponse:
    page = generate_latest(_process_registry()) + generate_latest(
        scrape_registry(UptimeCollector(), BacklogCollector(), DependencyCollector())
    )
    return HttpResponse(page, content_type=CONTENT_TYPE_LATEST)
