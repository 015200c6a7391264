"""The web's ``/metrics``: every gunicorn worker's counters (prometheus_client's multiprocess
mode, when ``PROMETHEUS_MULTIPROC_DIR`` is set, as ``make up`` does), the process's uptime
and the delivery backlog read from PostgreSQL (``webhooks.backlog``)."""

from __future__ import annotations

import os

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

from core.metrics import UptimeCollector, scrape_registry
from webhooks.backlog import BacklogCollector


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
        scrape_registry(UptimeCollector(), BacklogCollector())
    )
    return HttpResponse(page, content_type=CONTENT_TYPE_LATEST)
