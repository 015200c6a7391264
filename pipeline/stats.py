"""What the pipeline has done lately: throughput, batch time, the last batch and errors.

The consume loop records each batch and each failed try here; the figures go to Prometheus
(``event_processing_duration_seconds``, ``events_processed_total`` and the others of
``pipeline.batch``) and, with the lag report, to Redis, where ``GET /api/v1/pipeline/stats``
reads every live consumer's.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter, Histogram

BATCH_DURATION = Histogram(
    "event_processing_duration_seconds",
    "Time the pipeline took for one batch: mirror, route, rules, deliveries, publishing",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
BATCH_FAILURES = Counter(
    "pipeline_batch_failures_total", "Batches that failed and were tried again"
)

WINDOW_SECONDS = 60.0


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).isoformat()


class PipelineStats:
    """One consumer's figures since it started, and over the last minute."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.started_at = time.time()
        self.events = self.quarantined = self.deliveries = self.batches = 0
        self.failures = 0
        self.last_batch: dict[str, Any] | None = None
        self.last_error: dict[str, Any] | None = None
        # (monotonic time, events, seconds) of the batches of the last minute
        self._window: deque[tuple[float, int, float]] = deque()

    def batch(self, *, events: int, quarantined: int, deliveries: int, seconds: float) -> None:
        BATCH_DURATION.observe(seconds)
        now = time.monotonic()
        with self._lock:
            self.events += events
            self.quarantined += quarantined
            self.deliveries += deliveries
            self.batches += 1
            self.last_batch = {
                "at": _iso(time.time()),
                "events": events,
                "quarantined": quarantined,
                "deliveries": deliveries,
                "duration_ms": round(seconds * 1000, 1),
            }
            self._window.append((now, events + quarantined, seconds))
            self._trim(now)

    def failure(self, exc: BaseException) -> None:
        BATCH_FAILURES.inc()
        with self._lock:
            self.failures += 1
            self.last_error = {"at": _iso(time.time()), "error": f"{type(exc).__name__}: {exc}"}

    def _trim(self, now: float) -> None:
        while self._window and now - self._window[0][0] > WINDOW_SECONDS:
            self._window.popleft()

    def snapshot(self) -> dict[str, Any]:
        """The figures as the lag report carries them (JSON)."""
        now = time.monotonic()
        with self._lock:
            self._trim(now)
            recent = list(self._window)
            span = min(WINDOW_SECONDS, max(1.0, time.time() - self.started_at))
            return {
                "started_at": _iso(self.started_at),
                "events": self.events,
                "quarantined": self.quarantined,
                "deliveries": self.deliveries,
                "batches": self.batches,
                "failures": self.failures,
                "events_per_second": round(sum(n for _, n, _ in recent) / span, 2),
                "batches_last_minute": len(recent),
                "batch_ms_mean": (
                    round(sum(s for *_, s in recent) / len(recent) * 1000, 1) if recent else None
                ),
                "batch_ms_max": round(max(s for *_, s in recent) * 1000, 1) if recent else None,
                "last_batch": self.last_batch,
                "last_error": self.last_error,
            }
