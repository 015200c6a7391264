"""Traces across real processes: the web, the pipeline worker and the webhook worker, with
OTEL_ENABLED, report the spans of one trace to a real OTLP endpoint, the W3C trace context
travelling in the Kafka message's headers, the delivery row and the webhook's traceparent;
the JSON log lines carry the trace id. Off, nothing is traced."""

from __future__ import annotations

import json
import secrets
import time

import pytest

from core import tracing
from tests.helpers import OtlpReceiver
from tests.stack import Stack

SERVER, CLIENT, PRODUCER, CONSUMER = 2, 3, 4, 5  # OTLP span kinds


@pytest.mark.django_db(transaction=True)
def test_one_trace_runs_from_the_request_through_kafka_to_the_webhook(tmp_path, stack_scene):
    otlp = OtlpReceiver()
    stack = Stack(
        tmp_path,
        extra_env={
            "OTEL_ENABLED": "true",
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.endpoint,
            "OTEL_BSP_SCHEDULE_DELAY": "200",
        },
    ).start()
    try:
        # the producer is traced already: its context is the parent of the whole trace
        trace_id, parent_id = secrets.token_hex(16), secrets.token_hex(8)
        status = stack_scene.publish(
            stack,
            {"n": 1},
            **{"X-Request-ID": "trace-test-1", "traceparent": f"00-{trace_id}-{parent_id}-01"},
        )
        assert status == 202
        hook = stack_scene.hook
        (delivered,) = hook.wait_for(1, timeout=30) or [None]
        assert delivered is not None, stack.log("webhooks")
        version, received_trace, received_parent, flags = delivered.headers["traceparent"].split(
            "-"
        )
        assert received_trace == trace_id

        wanted = {
            ("eventhub-web", "ingest"),
            ("eventhub-web", "persist_event"),
            ("eventhub-web", "produce"),
            ("eventhub-worker", "consume"),
            ("eventhub-webhooks", "delivery_attempt"),
        }
        deadline = time.monotonic() + 30
        spans = []
        while time.monotonic() < deadline:
            spans = otlp.of_trace(trace_id)
            if wanted <= {(s.service, s.name) for s in spans}:
                break
            time.sleep(0.3)
        seen = {(s.service, s.name) for s in spans}
        assert wanted <= seen, seen
        by_name = {s.name: s for s in spans}
        # Django's own span is the child of the producer's context, and ours follow it
        (server,) = [s for s in spans if s.service == "eventhub-web" and s.kind == SERVER]
        assert server.parent_span_id == parent_id
        assert by_name["produce"].kind == PRODUCER
        assert by_name["produce"].parent_span_id == by_name["persist_event"].span_id
        # across Kafka: the consume span is the produce span's child
        assert by_name["consume"].kind == CONSUMER
        assert by_name["consume"].parent_span_id == by_name["produce"].span_id
        # across the delivery row: the attempt is the consume span's child, and the receiver
        # got the attempt's context
        attempt = by_name["delivery_attempt"]
        assert attempt.kind == CLIENT and attempt.parent_span_id == by_name["consume"].span_id
        assert received_parent == attempt.span_id
        assert attempt.attributes["http.response.status_code"] == 200
        # the batch's own trace (mirror, route) is linked from the consume span
        batch = [s for s in otlp.spans if s.name == "process_batch"]
        assert {s.span_id for s in batch} & set(by_name["consume"].links)
        assert {"mirror", "route"} <= {s.name for s in otlp.spans if s.service == "eventhub-worker"}
        # instrumented libraries report too: PostgreSQL, Redis, MongoDB from the processes
        systems = {
            s.attributes.get("db.system") or s.attributes.get("db.system.name") for s in otlp.spans
        }
        assert {"postgresql", "redis", "mongodb"} <= systems, systems

        # the web's log line of the request carries its request id and trace id
        lines = [json.loads(line) for line in stack.log_lines("web") if line.startswith("{")]
        (logged,) = [
            line
            for line in lines
            if line.get("request_id") == "trace-test-1" and line["logger"] == "eventhub.requests"
        ]
        assert logged["trace_id"] == trace_id and logged["service"] == "eventhub-web"
        # every process logs JSON lines with the same fields (Celery's banner is printed, not
        # logged); the gRPC server's lines included
        assert "grpc_server" in {
            json.loads(line)["logger"].rpartition(".")[2]
            for line in stack.log_lines("grpc")
            if line.startswith("{")
        }
        for name in ("web", "worker", "webhooks", "grpc"):
            records = [json.loads(line) for line in stack.log_lines(name) if line.startswith("{")]
            assert records, name
            assert all(
                {"time", "level", "logger", "service", "request_id", "trace_id"} <= r.keys()
                for r in records
            )
            assert {r["service"] for r in records} == {f"eventhub-{name}"}
    finally:
        stack.stop()
        otlp.close()


def test_off_nothing_is_traced_and_no_traceparent_is_made(settings):
    settings.OTEL_ENABLED = False
    assert not tracing.enabled()
    with tracing.tracer.start_as_current_span("ingest") as span:
        assert not span.is_recording()
        assert tracing.traceparent_of(span) == ""
