"""The rollups of a window as rows, and as Prometheus's text format: what ``MetricsService``
and ``GET /api/v1/analytics/rollups`` export, and what the metrics streams send per minute."""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from analytics.rollups import ERROR_SEVERITY, METRIC_EVENTS, severity_band
from analytics.windows import Filters, Window
from core import mongo

ERROR_BANDS = {severity_band(ERROR_SEVERITY), severity_band(10)}


def rollup_rows(window: Window, period: str, filters: Filters) -> list[dict[str, Any]]:
    """The rollups of ``period`` that start within the window, oldest first (a period past
    its retention has none)."""
    rows = mongo.get_db()[mongo.METRICS].find(
        {
            "metric": METRIC_EVENTS,
            "period": period,
            "start": {"$gte": window.since, "$lt": window.until},
            **Filters(types=filters.types, source=filters.source).match(),
        },
        sort=[("start", 1), ("type", 1), ("source", 1), ("band", 1)],
    )
    return [
        {
            "period": row["period"],
            "start": row["start"],
            "type": row["type"],
            "source": row["source"],
            "band": row["band"],
            "count": row["value"],
            "amount_sum": row["amount_sum"],
        }
        for row in rows
    ]


def minute_metrics(minute: datetime, filters: Filters) -> dict[str, Any]:
    """One closed minute: events in all, errors, the amount's sum and the count per type."""
    rows = rollup_rows(Window(minute, minute + timedelta(minutes=1)), "1m", filters)
    by_type: Counter[str] = Counter()
    for row in rows:
        by_type[row["type"]] += row["count"]
    return {
        "minute": minute.isoformat().replace("+00:00", "Z"),
        "total": sum(by_type.values()),
        "errors": sum(row["count"] for row in rows if row["band"] in ERROR_BANDS),
        "amount_sum": sum(row["amount_sum"] for row in rows),
        "by_type": [{"key": key, "count": count} for key, count in sorted(by_type.items())],
    }


class _Rollups:
    """A collector of exported rollups, each sample at its period's start."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows

    def collect(self):
        labels = ["period", "type", "source", "band"]
        events = GaugeMetricFamily(
            "eventhub_rollup_events", "Events stored in the rollup's period", labels=labels
        )
        amount = GaugeMetricFamily(
            "eventhub_rollup_amount_sum", "Sum of the events' data amount", labels=labels
        )
        for row in self.rows:
            values = [row["period"], row["type"], row["source"], row["band"]]
            moment = row["start"].timestamp()
            events.add_metric(values, row["count"], timestamp=moment)
            amount.add_metric(values, row["amount_sum"], timestamp=moment)
        yield events
        yield amount


def as_prometheus(rows: list[dict[str, Any]]) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Rollups(rows))
    return generate_latest(registry).decode()


def render(rows: list[dict[str, Any]], kind: str) -> str:
    """The rows as ``prometheus`` text, ``json`` or ``csv``."""
    if kind == "prometheus":
        return as_prometheus(rows)
    plain = [{**row, "start": row["start"].isoformat().replace("+00:00", "Z")} for row in rows]
    if kind == "json":
        return json.dumps(plain)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(plain)
    return out.getvalue()


COLUMNS = ["period", "start", "type", "source", "band", "count", "amount_sum"]
