"""OpenTelemetry tracing, switched on by ``OTEL_ENABLED``.

When on, each process exports its spans over OTLP (gRPC, ``OTEL_EXPORTER_OTLP_ENDPOINT``)
under its ``SERVICE_NAME``, and the libraries EventHub uses are instrumented: Django, psycopg,
pymongo, Redis, Celery and gRPC. EventHub's own spans: ``ingest`` and ``persist_event`` (one
per event) with ``produce`` on the web and gRPC doors; ``consume`` (one per event, the child
of its producer's span through the W3C ``traceparent`` in the Kafka message's headers),
``mirror`` and ``route`` in the pipeline; ``delivery_attempt`` in the webhook worker, whose
context goes to the receiver as ``traceparent``. A delivery keeps the ``traceparent`` of its
event's ``consume`` span, so one trace runs from the HTTP request to the webhook.

When off, nothing is configured: the spans are OpenTelemetry's no-op ones and the per-event
work is skipped (``enabled()``), so it costs nothing measurable.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable, Mapping

from django.conf import settings
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span

logger = logging.getLogger(__name__)

tracer = trace.get_tracer("eventhub")

TRACEPARENT = "traceparent"
_configured = threading.Event()
_lock = threading.Lock()


def enabled() -> bool:
    return settings.OTEL_ENABLED


def configure() -> bool:
    """Set up the tracer provider, the OTLP exporter and the instrumentations (once per
    process; a no-op unless ``OTEL_ENABLED``). Returns whether tracing is on."""
    if not settings.OTEL_ENABLED:
        return False
    with _lock:
        if _configured.is_set():
            return True
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
        from opentelemetry.instrumentation.celery import CeleryInstrumentor
        from opentelemetry.instrumentation.django import DjangoInstrumentor
        from opentelemetry.instrumentation.grpc import GrpcInstrumentorServer
        from opentelemetry.instrumentation.psycopg import PsycopgInstrumentor
        from opentelemetry.instrumentation.pymongo import PymongoInstrumentor
        from opentelemetry.instrumentation.redis import RedisInstrumentor
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        provider = TracerProvider(resource=Resource.create({"service.name": settings.SERVICE_NAME}))
        # the endpoint, headers and timeouts come from the standard OTEL_EXPORTER_OTLP_*
        # variables; the processor's thread is made again in a forked child
        provider.add_span_processor(
            BatchSpanProcessor(
                OTLPSpanExporter(
                    endpoint=settings.OTEL_EXPORTER_OTLP_ENDPOINT,
                    insecure=settings.OTEL_EXPORTER_OTLP_INSECURE,
                )
            )
        )
        trace.set_tracer_provider(provider)
        DjangoInstrumentor().instrument()
        PsycopgInstrumentor().instrument(enable_commenter=False)
        PymongoInstrumentor().instrument()
        RedisInstrumentor().instrument()
        CeleryInstrumentor().instrument()
        GrpcInstrumentorServer().instrument()
        _configured.set()
        logger.info(
            "tracing on: spans of %s go to %s",
            settings.SERVICE_NAME,
            settings.OTEL_EXPORTER_OTLP_ENDPOINT,
        )
        return True


def traceparent_of(span: Span) -> str:
    """The W3C ``traceparent`` naming ``span`` as the parent ("" when it is not recording)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return carrier.get(TRACEPARENT, "")


def context_from_traceparent(traceparent: str | None) -> otel_context.Context | None:
    """The context a ``traceparent`` names, for a child span (None without one)."""
    if not traceparent:
        return None
    return propagate.extract({TRACEPARENT: traceparent})


def context_from_headers(
    headers: Iterable[tuple[str, bytes | None]] | None,
) -> otel_context.Context:
    """The trace context of a Kafka message's headers (W3C ``traceparent``, ``tracestate``)."""
    carrier: Mapping[str, str] = {
        name: value.decode("latin-1")
        for name, value in headers or ()
        if value is not None and name in (TRACEPARENT, "tracestate")
    }
    return propagate.extract(carrier)
