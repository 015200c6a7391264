"""Health checks: is the process alive, and does each dependency answer?

``GET /health`` answers as long as the process serves requests. ``GET /ready`` checks
PostgreSQL, Redis, Kafka and MongoDB, each with its status and latency, and answers 503 with
``Retry-After`` when one is down. ``GET /health/<name>`` checks one dependency, or
``pipeline``: whether the pipeline's consumers report in, their lag, and none stalled (see
``pipeline.lag``). The pipeline is not part of ``/ready``: the web tier serves without it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import redis
from django.conf import settings
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from core import __version__, kafka, mongo
from core.problems import problem_response
from pipeline.lag import pipeline_status


def check_postgres() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return "ok"


def check_redis() -> str:
    timeout = settings.HEALTH_CHECK_TIMEOUT
    client = redis.Redis.from_url(
        settings.REDIS_URL, socket_timeout=timeout, socket_connect_timeout=timeout
    )
    try:
        client.ping()
    finally:
        client.close()
    return "ok"


def check_kafka() -> str:
    metadata = kafka.get_admin().list_topics(timeout=settings.HEALTH_CHECK_TIMEOUT)
    if not metadata.brokers:
        raise ConnectionError("no broker in the cluster metadata")
    return "ok"


def check_mongodb() -> str:
    mongo.get_client().admin.command("ping")
    return "ok"


CHECKS: dict[str, Callable[[], Any]] = {
    "postgres": check_postgres,
    "redis": check_redis,
    "kafka": check_kafka,
    "mongodb": check_mongodb,
}
# Checks of EventHub's own processes, asked for by name only.
PROCESS_CHECKS: dict[str, Callable[[], Any]] = {"pipeline": pipeline_status}


def run_check(name: str) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        detail = {**CHECKS, **PROCESS_CHECKS}[name]()
    except Exception as exc:  # noqa: BLE001 - any failure means "down"; the reason is reported
        result: dict[str, Any] = {"status": "down", "error": f"{type(exc).__name__}: {exc}"}
    else:
        result = {"status": "ok", **(detail if isinstance(detail, dict) else {})}
    result["latency_ms"] = round((time.perf_counter() - started) * 1000, 2)
    return result


def _readiness(names: list[str]) -> JsonResponse:
    results = {name: run_check(name) for name in names}
    down = [name for name, result in results.items() if result["status"] != "ok"]
    if down:
        return problem_response(
            503,
            "Service unavailable",
            f"Not ready: {', '.join(down)} unavailable.",
            "dependency-unavailable",
            retry_after=settings.HEALTH_RETRY_AFTER,
            checks=results,
        )
    return JsonResponse({"status": "ok", "checks": results})


@never_cache
@require_GET
def health(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok", "version": __version__})


@never_cache
@require_GET
def ready(request: HttpRequest) -> JsonResponse:
    return _readiness(list(CHECKS))


@never_cache
@require_GET
def dependency(request: HttpRequest, name: str) -> JsonResponse:
    if name not in CHECKS and name not in PROCESS_CHECKS:
        return problem_response(
            404,
            "Not found",
            f"Unknown dependency {name!r}; known: {', '.join([*CHECKS, *PROCESS_CHECKS])}.",
            "not-found",
        )
    return _readiness([name])
