"""Rollups of the events in MongoDB's ``metrics`` collection: counts and amount sums per
period (1m, 5m, 1h, 1d), event type, source and severity band.

The pipeline counts each stored event exactly once, whatever it replays: an event is stored
with ``rolled_up: false``, and one MongoDB transaction adds the batch's uncounted events to
their rollups and marks them counted. A replayed batch finds them marked and adds nothing; two
consumers counting the same event conflict, and the transaction that retries finds it counted.
``rollups_rebuild`` recomputes the rollups of a window from the stored events (for events
stored before rollups existed, or after a retention change).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from pymongo import UpdateOne
from pymongo.read_concern import ReadConcern
from pymongo.write_concern import WriteConcern

from core import mongo

# period name -> seconds
PERIODS: dict[str, int] = {"1m": 60, "5m": 300, "1h": 3600, "1d": 86400}
METRIC_EVENTS = "events"

# severity band -> (lowest, highest) severity
BANDS: dict[str, tuple[int, int]] = {
    "info": (1, 3),
    "warning": (4, 6),
    "error": (7, 8),
    "critical": (9, 10),
}
NO_SEVERITY = "none"  # events published without a severity
ERROR_SEVERITY = BANDS["error"][0]  # error and critical events are errors


def severity_band(severity: Any) -> str:
    if isinstance(severity, int) and not isinstance(severity, bool):
        for band, (low, high) in BANDS.items():
            if low <= severity <= high:
                return band
    return NO_SEVERITY


def amount_of(document: dict[str, Any], field: str = "amount") -> float | None:
    """The number at ``payload.<field>``, None when it is absent or not a number."""
    payload = document.get("payload")
    value = payload.get(field) if isinstance(payload, dict) else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def period_start(moment: datetime, period: str) -> datetime:
    seconds = PERIODS[period]
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    epoch = int(moment.timestamp()) // seconds * seconds
    return datetime.fromtimestamp(epoch, tz=UTC)


def _expiry(period: str, start: datetime) -> datetime:
    return (
        start
        + timedelta(seconds=PERIODS[period])
        + timedelta(days=settings.ANALYTICS_ROLLUP_RETENTION_DAYS[period])
    )


Cell = tuple[str, datetime, str, str, str]  # period, start, type, source, band


def tally(documents: Iterable[dict[str, Any]]) -> dict[Cell, list[float]]:
    """Count, amount sum and amount count per rollup cell of the documents."""
    cells: dict[Cell, list[float]] = defaultdict(lambda: [0, 0.0, 0])
    for document in documents:
        band = severity_band(document.get("severity"))
        amount = amount_of(document)
        for period in PERIODS:
            cell = cells[
                (
                    period,
                    period_start(document["timestamp"], period),
                    document["type"],
                    document["source"],
                    band,
                )
            ]
            cell[0] += 1
            if amount is not None:
                cell[1] += amount
                cell[2] += 1
    return cells


def _cell_filter(cell: Cell) -> dict[str, Any]:
    period, start, event_type, source, band = cell
    return {
        "metric": METRIC_EVENTS,
        "period": period,
        "start": start,
        "type": event_type,
        "source": source,
        "band": band,
    }


def _writes(cells: dict[Cell, list[float]], *, replace: bool) -> list[UpdateOne]:
    """Upserts of the cells; those already past their retention are left out (readers take
    such periods from the stored events)."""
    operation = "$set" if replace else "$inc"
    now = datetime.now(tz=UTC)
    writes = []
    for cell, (value, amount, counted) in cells.items():
        expires_at = _expiry(cell[0], cell[1])
        if expires_at <= now:
            continue
        writes.append(
            UpdateOne(
                _cell_filter(cell),
                {
                    operation: {"value": value, "amount_sum": amount, "amount_count": counted},
                    "$setOnInsert": {"expires_at": expires_at},
                },
                upsert=True,
            )
        )
    return writes


PROJECTION = {"_id": 1, "type": 1, "source": 1, "severity": 1, "timestamp": 1, "payload.amount": 1}


def rollups_add(keys: list[tuple[str, str]]) -> int:
    """Add the stored, uncounted events among ``keys`` ((source, id) pairs) to their rollups
    and mark them counted, in one transaction; return how many were added."""
    if not keys:
        return 0
    client = mongo.get_client()
    db = mongo.get_db()
    wanted = set(keys)
    ids = list({event_id for _, event_id in keys})

    def count(session) -> int:
        events = db[mongo.EVENTS]
        found = [
            d
            for d in events.find(
                {"event_id": {"$in": ids}, "rolled_up": False},
                {**PROJECTION, "event_id": 1},
                session=session,
            )
            if (d["source"], d["event_id"]) in wanted
        ]
        if not found:
            return 0
        writes = _writes(tally(found), replace=False)
        if writes:
            db[mongo.METRICS].bulk_write(writes, session=session)
        events.update_many(
            {"_id": {"$in": [d["_id"] for d in found]}},
            {"$set": {"rolled_up": True}},
            session=session,
        )
        return len(found)

    with client.start_session() as session:
        return session.with_transaction(
            count,
            read_concern=ReadConcern("snapshot"),
            write_concern=WriteConcern("majority"),
        )


def rollups_rebuild(since: datetime, until: datetime) -> int:
    """Recompute the rollups of every period that lies within [since, until) from the stored
    events, and mark those events counted; return the number of events counted."""
    db = mongo.get_db()
    day = PERIODS["1d"]
    since = period_start(since, "1d")
    until = period_start(until, "1d") + timedelta(seconds=day)
    # a whole day is rebuilt at once, so every coarser period is complete
    counted = 0
    start = since
    while start < until:
        end = start + timedelta(seconds=day)
        window = {"timestamp": {"$gte": start, "$lt": end}}
        # marked first: the pipeline leaves them alone while they are tallied
        db[mongo.EVENTS].update_many({**window, "rolled_up": False}, {"$set": {"rolled_up": True}})
        documents = list(db[mongo.EVENTS].find(window, PROJECTION))
        db[mongo.METRICS].delete_many(
            {"metric": METRIC_EVENTS, "start": {"$gte": start, "$lt": end}}
        )
        writes = _writes(tally(documents), replace=True)
        if writes:
            db[mongo.METRICS].bulk_write(writes, ordered=False)
        counted += len(documents)
        start = end
    return counted
