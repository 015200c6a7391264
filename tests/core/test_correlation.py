"""Log lines as the processes write them: one JSON object each, with the service, the request
id and, inside a span, the trace id."""

from __future__ import annotations

import json
import logging

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from pythonjsonlogger.json import JsonFormatter

from core.correlation import given_request_id, request_context


def line(logger: str, message: str, level: int = logging.WARNING) -> dict:
    """A record formatted by the root logger's console handler (the settings' LOGGING)."""
    (handler,) = [h for h in logging.getLogger().handlers if isinstance(h.formatter, JsonFormatter)]
    record = logging.LogRecord(logger, level, __file__, 1, message, None, None)
    assert all(f.filter(record) for f in handler.filters)
    return json.loads(handler.format(record))


def test_a_line_outside_any_request_still_names_its_fields(settings):
    settings.SERVICE_NAME = "eventhub-worker"
    logged = line("pipeline.lag", "pipeline moving again")
    assert logged["message"] == "pipeline moving again"
    assert logged["level"] == "WARNING" and logged["logger"] == "pipeline.lag"
    assert logged["service"] == "eventhub-worker"
    assert logged["request_id"] is None and logged["trace_id"] is None


def test_a_line_inside_a_request_and_a_span_carries_both_ids():
    tracer = TracerProvider().get_tracer("test")
    with request_context("req-7"), tracer.start_as_current_span("ingest") as span:
        logged = line("events.services", "kept in the spool")
    context = span.get_span_context()
    assert logged["request_id"] == "req-7"
    assert logged["trace_id"] == trace.format_trace_id(context.trace_id)
    assert logged["span_id"] == trace.format_span_id(context.span_id)


def test_request_ids_are_short_tokens_or_replaced():
    assert given_request_id("3f2a-b9") == "3f2a-b9"
    assert given_request_id(b"grpc-id") == "grpc-id"
    for bad in ("", None, "a b", "x" * 129, "line\nbreak", '{"json": 1}'):
        assert given_request_id(bad) is None, bad
    with request_context(None) as made_up:
        assert len(made_up) == 32
