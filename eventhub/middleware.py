"""The web's request middleware: the request id every log line and answer carries, and
``http_requests_total`` / ``http_request_duration_seconds`` by view (the URL's name, a
bounded set; never the path itself)."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from prometheus_client import Counter, Histogram

from core.correlation import given_request_id, request_context

logger = logging.getLogger("eventhub.requests")

HTTP_REQUESTS = Counter(
    "http_requests_total", "HTTP requests answered", ["method", "view", "status"]
)
HTTP_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time to answer an HTTP request",
    ["method", "view"],
    buckets=(0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))


def view_of(request: HttpRequest) -> str:
    match = getattr(request, "resolver_match", None)
    return (match.view_name if match is not None else "") or "unmatched"


class RequestObservation:
    """Takes the caller's ``X-Request-ID`` (or makes one), answers with it, counts the
    request and logs it (the access log: one line per request, with its request id)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        given = given_request_id(request.headers.get("X-Request-ID"))
        with request_context(given) as request_id:
            request.request_id = request_id
            response = self.get_response(request)
            response["X-Request-ID"] = request_id
            method = request.method if request.method in METHODS else "OTHER"
            view = view_of(request)
            seconds = time.perf_counter() - started
            HTTP_REQUESTS.labels(method, view, str(response.status_code)).inc()
            HTTP_DURATION.labels(method, view).observe(seconds)
            logger.info(
                "%s %s %s",
                request.method,
                request.path,
                response.status_code,
                extra={
                    "http_status": response.status_code,
                    "view": view,
                    "duration_ms": round(seconds * 1000, 2),
                },
            )
        return response
