"""The figures of the operator console's index: what flows, what fails, what is stuck.

Every figure comes from the selector the API and the health checks read (``analytics.selectors``
for events and deliveries, ``pipeline.lag`` for the consumers, the subscriptions' and
deliveries' selectors), so the dashboard and the API never disagree. Each section is computed
on its own: a dependency that is down blanks its section with the reason, not the page.
Every read is indexed or capped, so the page stays cheap on tables of millions of rows.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from django.utils import timezone

from analytics.selectors import delivery_summary, summary, timeseries
from analytics.windows import Filters, Window
from pipeline.lag import consumer_reports
from subscriptions.selectors import subscription_health_counts, subscriptions_needing_attention
from webhooks.models import Delivery
from webhooks.selectors import capped_count, oldest_due_delivery

logger = logging.getLogger(__name__)

TOP_TYPES = 6  # event types charted, the busiest of the last hour
DEAD_COUNT_CAP = 10_000  # dead deliveries are counted up to this many
CHART_HEIGHT = 24  # the bar charts' viewBox height; one unit of width per bar


def dashboard(now: datetime | None = None) -> dict[str, Any]:
    """Every section of the dashboard; a section that could not be read holds its error."""
    now = now or timezone.now()
    return {
        "now": now,
        "events": _section("events", lambda: events_section(now)),
        "deliveries": _section("deliveries", lambda: deliveries_section(now)),
        "subscriptions": _section("subscriptions", subscriptions_section),
        "pipeline": _section("pipeline", pipeline_section),
    }


def _section(name: str, compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return {"ok": True, **compute()}
    except Exception as exc:  # noqa: BLE001 - an outage blanks its section, not the console
        logger.warning("dashboard: could not read the %s section: %s", name, exc)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"}


def bars(counts: list[int]) -> list[dict[str, Any]]:
    """Bars of a small SVG chart: one per count, heights scaled to the highest."""
    peak = max(counts, default=0) or 1
    bars = []
    for index, count in enumerate(counts):
        height = round(count / peak * CHART_HEIGHT, 2)
        bars.append({"x": index, "y": round(CHART_HEIGHT - height, 2), "height": height})
    return bars


def events_section(now: datetime) -> dict[str, Any]:
    """Events of the last hour by type, and each busy type's events per minute (rollups)."""
    window = Window(now - timedelta(hours=1), now)
    overview = summary(window)
    series = []
    for row in overview["by_type"][:TOP_TYPES]:
        points = timeseries(window, "1m", Filters(types=(row["key"],)))["points"]
        counts = [point["count"] for point in points]
        series.append(
            {
                "type": row["key"],
                "total": row["count"],
                "per_minute": round(row["count"] / 60, 1),
                "peak": max(counts, default=0),
                "bars": bars(counts),
                "width": len(counts),
                "points": [{"start": point["start"], "count": point["count"]} for point in points],
            }
        )
    return {
        "total": overview["total"],
        "per_minute": round(overview["total"] / 60, 1),
        "errors": overview["errors"],
        "error_share": overview["error_share"],
        "types": len(overview["by_type"]),
        "series": series,
    }


def _outcomes(figures: dict[str, Any]) -> dict[str, Any]:
    """A delivery summary with the share of each outcome, for the stacked bar."""
    total = figures["total"]
    other = total - figures["succeeded"] - figures["dead"]
    shares = {
        name: (count / total * 100 if total else 0.0)
        for name, count in (
            ("succeeded", figures["succeeded"]),
            ("dead", figures["dead"]),
            ("other", other),
        )
    }
    return {**figures, "other": other, "shares": shares}


def deliveries_section(now: datetime) -> dict[str, Any]:
    """Deliveries by outcome over the last hour and day, the dead ones, the oldest overdue."""
    dead, more = capped_count(Delivery.objects.filter(status=Delivery.Status.DEAD), DEAD_COUNT_CAP)
    oldest = oldest_due_delivery(now)
    return {
        "hour": _outcomes(delivery_summary(Window(now - timedelta(hours=1), now))),
        "day": _outcomes(delivery_summary(Window(now - timedelta(days=1), now))),
        "dead": dead,
        "dead_more": more,
        "oldest_due": oldest,
        "oldest_due_seconds": (
            (now - oldest.next_attempt_at).total_seconds() if oldest is not None else None
        ),
    }


def subscriptions_section() -> dict[str, Any]:
    return {"counts": subscription_health_counts(), "attention": subscriptions_needing_attention()}


def pipeline_section() -> dict[str, Any]:
    """The pipeline consumers' last reports (``pipeline.lag``, as ``/health/pipeline``): lag,
    stall, report age."""
    reports = sorted(consumer_reports(), key=lambda report: report["member"])
    now = time.time()
    consumers = [
        {**report, "age_seconds": round(max(0.0, now - report["checked_at"]), 1)}
        for report in reports
    ]
    return {
        "consumers": consumers,
        "lag": sum(report["lag"] for report in reports),
        "stalled": sum(1 for report in reports if report["stalled"]),
    }
