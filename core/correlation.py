"""What ties a log line to the request and the trace it belongs to, and the shape of the line.

The request id is the caller's ``X-Request-ID`` (or one made up for the request): the web's
middleware, the gRPC server and the pipeline (from the message's ``x-request-id`` header) set
it for the work they do. The trace id and span id are OpenTelemetry's current span's, when
tracing is on. ``CorrelationFilter`` puts both on every log record, so every JSON line of
every process carries ``request_id``, ``trace_id`` and ``service``. ``logging_config`` is the
one logging configuration: the settings' ``LOGGING`` and gunicorn's own.
"""

from __future__ import annotations

import logging
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from django.conf import settings
from opentelemetry import trace

_request_id: ContextVar[str | None] = ContextVar("eventhub_request_id", default=None)
# what a caller's X-Request-ID may be (it goes into logs and Kafka headers as it is)
_ACCEPTED = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


def given_request_id(value: str | bytes | None) -> str | None:
    """A caller's request id when it is a short printable token, else None (one is made)."""
    if isinstance(value, bytes):
        value = value.decode("latin-1")
    return value if value and _ACCEPTED.fullmatch(value) else None


def new_request_id() -> str:
    return uuid.uuid4().hex


def current_request_id() -> str | None:
    return _request_id.get()


@contextmanager
def request_context(request_id: str | None) -> Iterator[str]:
    """Within the block, logs carry ``request_id`` (a new one when None is given)."""
    request_id = request_id or new_request_id()
    token = bind_request_id(request_id)
    try:
        yield request_id
    finally:
        unbind_request_id(token)


def bind_request_id(request_id: str) -> Token:
    """From now on in this context, logs carry ``request_id`` (undo with the token)."""
    return _request_id.set(request_id)


def unbind_request_id(token: Token) -> None:
    _request_id.reset(token)


def current_trace_ids() -> tuple[str | None, str | None]:
    """The current span's trace id and span id in W3C hex form (None without a span)."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None, None
    return trace.format_trace_id(context.trace_id), trace.format_span_id(context.span_id)


class CorrelationFilter(logging.Filter):
    """Adds ``service``, ``request_id``, ``trace_id`` and ``span_id`` to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        # gunicorn's master logs before Django's settings are read
        record.service = (
            settings.SERVICE_NAME
            if settings.configured
            else os.environ.get("SERVICE_NAME") or "eventhub"
        )
        record.request_id = _request_id.get()
        record.trace_id, record.span_id = current_trace_ids()
        return True


def logging_config(
    log_format: str, level: str, *, loggers: dict[str, dict[str, Any]] | None = None
) -> dict[str, Any]:
    """A ``logging.config.dictConfig`` dict: the root logger writes ``log_format`` lines
    (``json`` or ``plain``) on stderr, with the correlation fields, and counts errors in
    ``errors_total`` (``core.metrics.ErrorCounter``)."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "filters": {"correlation": {"()": "core.correlation.CorrelationFilter"}},
        "formatters": {
            "json": {
                "()": "pythonjsonlogger.json.JsonFormatter",
                "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
                "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
            },
            "plain": {
                "format": "%(asctime)s %(levelname)s %(name)s "
                "[request_id=%(request_id)s trace_id=%(trace_id)s] %(message)s"
            },
        },
        "handlers": {
            "console": {
                "class": "logging.StreamHandler",
                "formatter": log_format,
                "filters": ["correlation"],
            },
            "errors": {"()": "core.metrics.ErrorCounter"},
        },
        "root": {"handlers": ["console", "errors"], "level": level},
        "loggers": loggers or {},
    }
