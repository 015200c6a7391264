"""Rollups of the events in MongoDB's ``metrics`` collection: counts and amount sums per
period (1m, 5m, 1h, 1d), event type, source and severity band.

The pipeline counts each stored event exactly once, whatever it replays
(``rollups_count_batch``): every stored event keeps the mark of the Kafka message that stored
it, and a ledger of the highest offset counted per topic partition moves in the same MongoDB
transaction as the counts, so a replayed batch finds its offsets counted and adds nothing; two
consumers with the same batch conflict, and the transaction that retries finds them counted.
Nothing is written per event beyond the event itself.
``rollups_rebuild`` recomputes the rollups of a window from the stored events (for events
stored before rollups existed, or after a retention change).
"""

from __future__ import annotations

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
METRIC_EVENTS = "events"  # per type, source and severity band: count, amount
METRIC_ERRORS = "errors"  # error events per type, source and code: count, first, last seen

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


# metric, period, start, type, source, band (events) or error code (errors)
Cell = tuple[str, str, datetime, str, str, str | None]
CODE_LENGTH = 200  # an error code longer than this is cut (codes are the producers' text)


def error_code(document: dict[str, Any]) -> str | None:
    """An error event's code: ``data.error_code``, else ``data.code``, as text."""
    payload = document.get("payload")
    if not isinstance(payload, dict):
        return None
    return code_text(payload.get("error_code", payload.get("code")))


def code_text(code: Any) -> str | None:
    """An error code as the rollups keep it: text (producers send numbers and strings alike),
    at most ``CODE_LENGTH`` characters."""
    if code is None:
        return None
    return (code if isinstance(code, str) else str(code))[:CODE_LENGTH]


def tally(documents: Iterable[dict[str, Any]]) -> dict[Cell, list]:
    """Per rollup cell of the documents: count, amount sum and amount count (``events``);
    count, first and last seen (``errors``: severity 7 and above, by error code)."""
    cells: dict[Cell, list] = {}
    for document in documents:
        band = severity_band(document.get("severity"))
        amount = amount_of(document)
        moment = document["timestamp"]
        is_error = band in ("error", "critical")
        code = error_code(document) if is_error else None
        for period in PERIODS:
            start = period_start(moment, period)
            key = (METRIC_EVENTS, period, start, document["type"], document["source"], band)
            cell = cells.setdefault(key, [0, 0.0, 0])
            cell[0] += 1
            if amount is not None:
                cell[1] += amount
                cell[2] += 1
            if is_error:
                key = (METRIC_ERRORS, period, start, document["type"], document["source"], code)
                cell = cells.setdefault(key, [0, moment, moment])
                cell[0] += 1
                cell[1] = min(cell[1], moment)
                cell[2] = max(cell[2], moment)
    return cells


def _cell_filter(cell: Cell) -> dict[str, Any]:
    metric, period, start, event_type, source, last = cell
    found = {"metric": metric, "period": period, "start": start, "type": event_type}
    found["source"] = source
    found["band" if metric == METRIC_EVENTS else "code"] = last
    return found


def _update(cell: Cell, values: list, *, replace: bool) -> dict[str, Any]:
    operation = "$set" if replace else "$inc"
    if cell[0] == METRIC_EVENTS:
        value, amount, counted = values
        return {operation: {"value": value, "amount_sum": amount, "amount_count": counted}}
    value, first, last = values
    if replace:
        return {"$set": {"value": value, "first_seen": first, "last_seen": last}}
    return {"$inc": {"value": value}, "$min": {"first_seen": first}, "$max": {"last_seen": last}}


def _writes(cells: dict[Cell, list], *, replace: bool) -> list[UpdateOne]:
    """Upserts of the cells; those already past their retention are left out (readers take
    such periods from the stored events)."""
    now = datetime.now(tz=UTC)
    writes = []
    for cell, values in cells.items():
        expires_at = _expiry(cell[1], cell[2])
        if expires_at <= now:
            continue
        update = _update(cell, values, replace=replace)
        update["$setOnInsert"] = {"expires_at": expires_at}
        writes.append(UpdateOne(_cell_filter(cell), update, upsert=True))
    return writes


PROJECTION = {
    "_id": 1,
    "type": 1,
    "source": 1,
    "severity": 1,
    "timestamp": 1,
    "payload.amount": 1,
    "payload.error_code": 1,
    "payload.code": 1,
}


def rollups_add(documents: list[dict[str, Any]]) -> int:
    """Add stored events to their rollups, unconditionally (for stores other than the
    pipeline, which counts with ``rollups_count_batch``); return how many."""
    writes = _writes(tally(documents), replace=False)
    if writes:
        mongo.get_db()[mongo.METRICS].bulk_write(writes, ordered=False)
    return len(documents)


def stored_from(topic: str, partition: int, offset: int) -> str:
    """The mark a stored event keeps of the Kafka message that stored it."""
    return f"{topic}:{partition}:{offset}"


def _position(mark: str) -> tuple[str, int]:
    """(topic:partition, offset) of a ``stored_from`` mark."""
    where, _, offset = mark.rpartition(":")
    return where, int(offset)


def rollups_count_batch(documents: list[dict[str, Any]], duplicates: set[tuple[str, str]]) -> int:
    """Count a pipeline batch's events in the rollups, each stored event exactly once.

    ``documents`` are the batch's events as the pipeline stored them (each with its message's
    ``stored_from`` mark), ``duplicates`` the keys MongoDB already held. An event is counted
    when this batch stored it, or when the very same message stored it on an earlier try
    (its stored mark is the message's), never when another message stored it first. A ledger
    per topic partition (the highest offset counted) is moved in the same transaction as the
    counts: a replayed batch, or a second consumer of it, finds its offsets counted and adds
    nothing. Returns how many events were added."""
    if not documents:
        return 0
    db = mongo.get_db()
    candidates = [d for d in documents if (d["source"], d["event_id"]) not in duplicates]
    again = [d for d in documents if (d["source"], d["event_id"]) in duplicates]
    if again:
        stored = {
            (row["source"], row["event_id"]): row.get("stored_from")
            for row in db[mongo.EVENTS].find(
                {"event_id": {"$in": list({d["event_id"] for d in again})}},
                {"_id": 0, "source": 1, "event_id": 1, "stored_from": 1},
            )
        }
        candidates += [
            d for d in again if stored.get((d["source"], d["event_id"])) == d["stored_from"]
        ]
    if not candidates:
        return 0
    positions = [(_position(d["stored_from"]), d) for d in candidates]
    highest: dict[str, int] = {}
    for (where, offset), _ in positions:
        highest[where] = max(highest.get(where, -1), offset)

    def count(session) -> int:
        ledger = {
            row["_id"]: row["counted_through"]
            for row in db[mongo.ROLLUP_LEDGER].find(
                {"_id": {"$in": list(highest)}}, session=session
            )
        }
        fresh = [d for (where, offset), d in positions if offset > ledger.get(where, -1)]
        writes = _writes(tally(fresh), replace=False)
        if writes:
            db[mongo.METRICS].bulk_write(writes, session=session)
        for where, offset in highest.items():
            if offset > ledger.get(where, -1):
                db[mongo.ROLLUP_LEDGER].update_one(
                    {"_id": where},
                    {"$max": {"counted_through": offset}},
                    upsert=True,
                    session=session,
                )
        return len(fresh)

    with mongo.get_client().start_session() as session:
        return session.with_transaction(
            count,
            read_concern=ReadConcern("snapshot"),
            write_concern=WriteConcern("majority"),
        )


def ledger_reset() -> int:
    """Forget the counted offsets (after the events topic was recreated: its offsets start
    again from 0); return how many partitions were known."""
    return mongo.get_db()[mongo.ROLLUP_LEDGER].delete_many({}).deleted_count


def rollups_rebuild(since: datetime, until: datetime) -> int:
    """Recompute the rollups of the whole days that [since, until) touches from the stored
    events; return the number of events counted."""
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
        documents = list(db[mongo.EVENTS].find(window, PROJECTION))
        db[mongo.METRICS].delete_many(
            {
                "metric": {"$in": [METRIC_EVENTS, METRIC_ERRORS]},
                "start": {"$gte": start, "$lt": end},
            }
        )
        writes = _writes(tally(documents), replace=True)
        if writes:
            db[mongo.METRICS].bulk_write(writes, ordered=False)
        counted += len(documents)
        start = end
    return counted
