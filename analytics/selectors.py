"""Aggregations over the raw events in MongoDB."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from core import mongo


def metrics_window(*, minutes: int, now: datetime | None = None) -> dict[str, Any]:
    """Event count and the sum of ``payload.amount`` over the last ``minutes``, by event time."""
    now = now or datetime.now(tz=UTC)
    start = now - timedelta(minutes=minutes)
    pipeline = [
        {"$match": {"timestamp": {"$gte": start, "$lte": now}}},
        {
            "$group": {
                "_id": None,
                "count": {"$sum": 1},
                "amount": {
                    "$sum": {"$cond": [{"$isNumber": "$payload.amount"}, "$payload.amount", 0]}
                },
            }
        },
    ]
    rows = list(mongo.get_db()[mongo.EVENTS].aggregate(pipeline))
    row = rows[0] if rows else {"count": 0, "amount": 0}
    return {
        "event_count": row["count"],
        "total_amount": float(row["amount"]),
        "start": start,
        "end": now,
    }
