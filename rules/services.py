"""Rule operations that reach outside PostgreSQL: backtesting a rule against stored events."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from core import mongo
from querylang import validate_query


def rule_backtest(*, conditions: dict[str, Any], days: int) -> dict[str, Any]:
    """How many events stored in the last ``days`` match ``conditions``, counted by MongoDB
    itself (the same query language the pipeline evaluates in Python)."""
    validate_query(conditions)
    since = datetime.now(tz=UTC) - timedelta(days=days)
    window = {"timestamp": {"$gte": since}}
    events = mongo.get_db()[mongo.EVENTS]
    query = {"$and": [window, conditions]} if conditions else window
    return {
        "days": days,
        "since": since,
        "matched": events.count_documents(query),
        "total": events.count_documents(window),
    }
