"""Analytics over what flows: MongoDB aggregations on the stored events and their rollups, and
PostgreSQL's view of the deliveries.

Counts by type, source and severity band, and the top errors, come from the rollups wherever a
whole rollup period lies inside the window and from the stored events at its edges
(``analytics.windows``), so a window of days reads a few hundred rollups instead of every
event. Anything the rollups do
not hold (a subject, a payload filter, another numeric field) is aggregated from the events.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Aggregate, F, FloatField, Func

from analytics.rollups import (
    BANDS,
    ERROR_SEVERITY,
    METRIC_ERRORS,
    METRIC_EVENTS,
    NO_SEVERITY,
    PERIODS,
    code_text,
    period_start,
)
from analytics.windows import Filters, Window, in_window, window_rows
from core import mongo
from webhooks.models import Delivery, DeliveryStatus
from webhooks.selectors import outcome_counts, success_rate

BUCKETS = PERIODS  # a time series' bucket sizes are the rollup periods


def _cells(window: Window) -> list[dict]:
    """Count, amount sum and amount count per (type, source, band) over the window."""
    totals: dict[tuple, list[float]] = defaultdict(lambda: [0, 0.0, 0])
    raw = [
        {"$project": {"type": 1, "source": 1, "band": _BAND, "amount": _AMOUNT}},
        {
            "$group": {
                "_id": {"type": "$type", "source": "$source", "band": "$band"},
                "value": {"$sum": 1},
                "amount_sum": {"$sum": {"$ifNull": ["$amount", 0]}},
                "amount_count": {"$sum": {"$cond": [{"$eq": ["$amount", None]}, 0, 1]}},
            }
        },
    ]
    rolled = {
        "$group": {
            "_id": {"type": "$type", "source": "$source", "band": "$band"},
            "value": {"$sum": "$value"},
            "amount_sum": {"$sum": "$amount_sum"},
            "amount_count": {"$sum": "$amount_count"},
        }
    }
    for row in window_rows(window, raw=raw, metric=METRIC_EVENTS, rolled=rolled):
        total = totals[(row["_id"]["type"], row["_id"]["source"], row["_id"]["band"])]
        total[0] += row["value"]
        total[1] += row["amount_sum"]
        total[2] += row["amount_count"]
    return [
        {
            "type": t,
            "source": s,
            "band": b,
            "count": int(v[0]),
            "amount_sum": v[1],
            "amount_count": int(v[2]),
        }
        for (t, s, b), v in totals.items()
    ]


# the severity band of a stored event, in MongoDB's aggregation language
_BAND = {
    "$switch": {
        "branches": [
            {
                "case": {
                    "$and": [
                        {"$isNumber": "$severity"},
                        {"$gte": ["$severity", low]},
                        {"$lte": ["$severity", high]},
                    ]
                },
                "then": band,
            }
            for band, (low, high) in BANDS.items()
        ],
        "default": NO_SEVERITY,
    }
}


def _number_at(path: str) -> dict[str, Any]:
    return {"$cond": [{"$isNumber": f"${path}"}, {"$toDouble": f"${path}"}, None]}


_AMOUNT = _number_at("payload.amount")


def _sorted_counts(counts: dict[str, int]) -> list[dict[str, Any]]:
    return [
        {"key": key, "count": count}
        for key, count in sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    ]


def summary(window: Window, *, field: str = "amount") -> dict[str, Any]:
    """Counts by type, source and severity band, the error share, the sum and average of the
    numeric ``payload.<field>``, and the deliveries' success rate and latency."""
    cells = _cells(window)
    by_type: dict[str, int] = defaultdict(int)
    by_source: dict[str, int] = defaultdict(int)
    by_band: dict[str, int] = {band: 0 for band in [*BANDS, NO_SEVERITY]}
    total = 0
    for cell in cells:
        by_type[cell["type"]] += cell["count"]
        by_source[cell["source"]] += cell["count"]
        by_band[cell["band"]] += cell["count"]
        total += cell["count"]
    errors = by_band["error"] + by_band["critical"]
    if field == "amount":
        amount_sum = sum(cell["amount_sum"] for cell in cells)
        amount_count = sum(cell["amount_count"] for cell in cells)
    else:
        amount_sum, amount_count = _field_sum(window, field)
    return {
        "window": window.as_dict(),
        "total": total,
        "by_type": _sorted_counts(by_type),
        "by_source": _sorted_counts(by_source),
        "by_severity": [{"key": band, "count": count} for band, count in by_band.items()],
        "errors": errors,
        "error_share": errors / total if total else 0.0,
        "field": field,
        "sum": amount_sum,
        "average": amount_sum / amount_count if amount_count else None,
        "deliveries": delivery_summary(window),
    }


def _field_sum(window: Window, name: str) -> tuple[float, int]:
    value = _number_at(f"payload.{name}")
    rows = list(
        mongo.get_db()[mongo.EVENTS].aggregate(
            [
                {"$match": in_window(window)},
                {"$project": {"value": value}},
                {"$match": {"value": {"$ne": None}}},
                {"$group": {"_id": None, "sum": {"$sum": "$value"}, "count": {"$sum": 1}}},
            ]
        )
    )
    return (rows[0]["sum"], rows[0]["count"]) if rows else (0.0, 0)


class Seconds(Func):
    """The seconds of an interval (PostgreSQL's EXTRACT(EPOCH FROM ...))."""

    template = "EXTRACT(EPOCH FROM %(expressions)s)"
    output_field = FloatField()


class Percentile(Aggregate):
    function = "PERCENTILE_CONT"
    template = "%(function)s(%(fraction)s) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = FloatField()

    def __init__(self, expression: Any, fraction: float, **extra: Any) -> None:
        super().__init__(expression, fraction=float(fraction), **extra)


def delivery_summary(window: Window) -> dict[str, Any]:
    """Deliveries made for events of the window's time (by creation): how many ended in
    success or dead, the success rate of those that ended, and the latency from the delivery's
    creation to its success (median and p95, milliseconds)."""
    rows = Delivery.objects.filter(
        is_test=False, created_at__gte=window.since, created_at__lt=window.until
    )
    counts = outcome_counts(rows)
    latency = (
        rows.filter(status=DeliveryStatus.SUCCEEDED, delivered_at__isnull=False)
        .annotate(ms=Seconds(F("delivered_at") - F("created_at")) * 1000)
        .aggregate(p50=Percentile("ms", 0.5), p95=Percentile("ms", 0.95))
    )
    return {
        **counts,
        "success_rate": success_rate(counts["succeeded"], counts["dead"]),
        "latency_ms_p50": latency["p50"],
        "latency_ms_p95": latency["p95"],
    }


def _bucket_starts(window: Window, bucket: str) -> tuple[datetime, datetime, list[datetime]]:
    size = timedelta(seconds=BUCKETS[bucket])
    first = period_start(window.since, bucket)
    end = period_start(window.until, bucket)
    if end < window.until:
        end += size
    starts = []
    moment = first
    while moment < end:
        starts.append(moment)
        moment += size
    return first, end, starts


def bucket_count(window: Window, bucket: str) -> int:
    return len(_bucket_starts(window, bucket)[2])


def timeseries(window: Window, bucket: str, filters: Filters) -> dict[str, Any]:
    """Counts and amount sums per bucket (1m, 5m, 1h, 1d); the window widens to whole buckets.
    Buckets without events are there with zeros."""
    first, end, starts = _bucket_starts(window, bucket)
    widened = Window(first, end)
    db = mongo.get_db()
    totals: dict[datetime, list[float]] = {start: [0, 0.0] for start in starts}
    kept = datetime.now(tz=UTC) - timedelta(days=settings.ANALYTICS_ROLLUP_RETENTION_DAYS[bucket])
    raw_until = widened.until
    if filters.rollups_hold_it and first >= kept:
        dims = Filters(types=filters.types, source=filters.source).match()  # rollups' dims
        rows = db[mongo.METRICS].aggregate(
            [
                {
                    "$match": {
                        "metric": METRIC_EVENTS,
                        "period": bucket,
                        "start": {"$gte": first, "$lt": end},
                        **dims,
                    }
                },
                {
                    "$group": {
                        "_id": "$start",
                        "value": {"$sum": "$value"},
                        "amount": {"$sum": "$amount_sum"},
                    }
                },
            ]
        )
        for row in rows:
            moment = row["_id"].astimezone(UTC)
            totals[moment][0] += row["value"]
            totals[moment][1] += row["amount"]
        raw_until = first  # nothing raw
    if raw_until > first:
        unit, size = {"1m": ("minute", 1), "5m": ("minute", 5), "1h": ("hour", 1)}.get(
            bucket, ("day", 1)
        )
        rows = db[mongo.EVENTS].aggregate(
            [
                {"$match": {**in_window(widened), **filters.match()}},
                {
                    "$group": {
                        "_id": {
                            "$dateTrunc": {"date": "$timestamp", "unit": unit, "binSize": size}
                        },
                        "value": {"$sum": 1},
                        "amount": {"$sum": {"$ifNull": [_AMOUNT, 0]}},
                    }
                },
            ]
        )
        for row in rows:
            moment = row["_id"].astimezone(UTC)
            totals[moment][0] += row["value"]
            totals[moment][1] += row["amount"]
    return {
        "window": widened.as_dict(),
        "bucket": bucket,
        "points": [
            {"start": start, "count": int(value), "sum": amount}
            for start, (value, amount) in totals.items()
        ],
    }


ERROR_CODE = {"$ifNull": ["$payload.error_code", "$payload.code", None]}


def top_errors(window: Window, *, limit: int = 10) -> list[dict[str, Any]]:
    """The most frequent error events (severity 7 and above) by type, source and error code
    (``payload.error_code``, else ``payload.code``), with first and last seen: from the
    ``errors`` rollups inside the window, the stored events at its edges."""
    groups: dict[tuple, list] = {}
    raw = [
        {
            "$group": {
                "_id": {"type": "$type", "source": "$source", "code": ERROR_CODE},
                "count": {"$sum": 1},
                "first_seen": {"$min": "$timestamp"},
                "last_seen": {"$max": "$timestamp"},
            }
        }
    ]
    rolled = {
        "$group": {
            "_id": {"type": "$type", "source": "$source", "code": "$code"},
            "count": {"$sum": "$value"},
            "first_seen": {"$min": "$first_seen"},
            "last_seen": {"$max": "$last_seen"},
        }
    }
    errors = {"severity": {"$gte": ERROR_SEVERITY}}
    for row in window_rows(window, raw=raw, raw_match=errors, metric=METRIC_ERRORS, rolled=rolled):
        key = (row["_id"]["type"], row["_id"]["source"], code_text(row["_id"].get("code")))
        group = groups.setdefault(key, [0, row["first_seen"], row["last_seen"]])
        group[0] += row["count"]
        group[1] = min(group[1], row["first_seen"])
        group[2] = max(group[2], row["last_seen"])
    ordered = sorted(groups.items(), key=lambda item: (-item[1][0], *map(str, item[0])))
    return [
        {
            "type": event_type,
            "source": source,
            "code": code,
            "count": count,
            "first_seen": first,
            "last_seen": last,
        }
        for (event_type, source, code), (count, first, last) in ordered[:limit]
    ]


def user_activity(
    window: Window, *, subject: str | None = None, limit: int = 10
) -> list[dict[str, Any]]:
    """Per subject: events, events per type, first and last seen; one subject or the ``limit``
    most active."""
    match: dict[str, Any] = {**in_window(window)}
    match["user_id"] = subject if subject is not None else {"$ne": None}
    rows = mongo.get_db()[mongo.EVENTS].aggregate(
        [
            {"$match": match},
            {
                "$group": {
                    "_id": {"user": "$user_id", "type": "$type"},
                    "count": {"$sum": 1},
                    "first_seen": {"$min": "$timestamp"},
                    "last_seen": {"$max": "$timestamp"},
                }
            },
            {"$sort": {"count": -1, "_id.type": 1}},
            {
                "$group": {
                    "_id": "$_id.user",
                    "count": {"$sum": "$count"},
                    "types": {"$push": {"type": "$_id.type", "count": "$count"}},
                    "first_seen": {"$min": "$first_seen"},
                    "last_seen": {"$max": "$last_seen"},
                }
            },
            {"$sort": {"count": -1, "_id": 1}},
            {"$limit": limit},
        ],
        allowDiskUse=True,
    )
    return [
        {
            "subject": row["_id"],
            "count": row["count"],
            "types": row["types"],
            "first_seen": row["first_seen"],
            "last_seen": row["last_seen"],
        }
        for row in rows
    ]


def funnel(window: Window, steps: list[str]) -> dict[str, Any]:
    """How many subjects reached each step in order (an event of step n after one of step
    n - 1, by event time, within the window), and the conversion from the step before."""
    rows = mongo.get_db()[mongo.EVENTS].aggregate(
        [
            {"$match": {"type": {"$in": steps}, "user_id": {"$ne": None}, **in_window(window)}},
            {"$sort": {"timestamp": 1, "_id": 1}},
            {"$group": {"_id": "$user_id", "types": {"$push": "$type"}}},
            {
                "$project": {
                    "reached": {
                        "$reduce": {
                            "input": "$types",
                            "initialValue": 0,
                            "in": {
                                "$cond": [
                                    {
                                        "$and": [
                                            {"$lt": ["$$value", len(steps)]},
                                            {
                                                "$eq": [
                                                    "$$this",
                                                    {"$arrayElemAt": [steps, "$$value"]},
                                                ]
                                            },
                                        ]
                                    },
                                    {"$add": ["$$value", 1]},
                                    "$$value",
                                ]
                            },
                        }
                    }
                }
            },
            {"$group": {"_id": "$reached", "subjects": {"$sum": 1}}},
        ],
        allowDiskUse=True,
    )
    reached_exactly = {row["_id"]: row["subjects"] for row in rows}
    result = []
    for number, step in enumerate(steps, start=1):
        reached = sum(count for n, count in reached_exactly.items() if n >= number)
        before = result[-1]["subjects"] if result else None
        result.append(
            {
                "step": step,
                "subjects": reached,
                "conversion": (reached / before if before else None) if result else None,
            }
        )
    return {"window": window.as_dict(), "steps": result}


def events_per_minute(minutes: int) -> dict[str, Any]:
    """Event count and amount sum over the last ``minutes`` (``aggregatedMetrics``)."""
    window = Window.last(timedelta(minutes=minutes))
    cells = _cells(window)
    return {
        "event_count": sum(cell["count"] for cell in cells),
        "total_amount": float(sum(cell["amount_sum"] for cell in cells)),
        "start": window.since,
        "end": window.until,
    }
