"""The windows of analytics: a time window, the filters of a series or a stream, and how a
window is read, from the rollups of the whole periods inside it (the coarsest that fit) and
from the stored events at its edges and wherever a period's rollups have expired."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings

from analytics.rollups import PERIODS, period_start
from core import mongo

COARSEST_FIRST = sorted(PERIODS, key=PERIODS.get, reverse=True)


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime

    @classmethod
    def last(cls, span: timedelta, now: datetime | None = None) -> Window:
        now = now or datetime.now(tz=UTC)
        return cls(now - span, now)

    def as_dict(self) -> dict[str, datetime]:
        return {"since": self.since, "until": self.until}


@dataclass(frozen=True)
class Filters:
    """What a time series or a stream keeps: event types, a source, a subject, a filter in the
    query language (already validated) on the stored document."""

    types: tuple[str, ...] = ()
    source: str | None = None
    subject: str | None = None
    query: dict[str, Any] = field(default_factory=dict)

    @property
    def rollups_hold_it(self) -> bool:
        return self.subject is None and not self.query

    def match(self, prefix: str = "") -> dict[str, Any]:
        """The filters as a MongoDB condition on the stored event, its fields under
        ``prefix`` (``fullDocument.`` in a change stream, which leaves the query out: it
        names fields of the event itself)."""
        match: dict[str, Any] = {}
        if self.types and "*" not in self.types:
            match.update(type_condition(self.types, field=f"{prefix}type"))
        if self.source is not None:
            match[f"{prefix}source"] = self.source
        if self.subject is not None:
            match[f"{prefix}user_id"] = self.subject
        if self.query and not prefix:
            match = {"$and": [match, self.query]} if match else dict(self.query)
        return match


def type_condition(patterns: tuple[str, ...], field: str = "type") -> dict[str, Any]:
    """A condition on ``field`` for type patterns as subscriptions write them: exact names,
    and ``prefix.*`` for the types under a prefix."""
    exact = [p for p in patterns if not p.endswith(".*")]
    prefixes = [re.escape(p[:-1]) for p in patterns if p.endswith(".*")]
    conditions = []
    if exact:
        conditions.append({field: {"$in": exact}})
    if prefixes:
        conditions.append({field: {"$regex": f"^(?:{'|'.join(prefixes)})"}})
    return conditions[0] if len(conditions) == 1 else {"$or": conditions}


def in_window(window: Window) -> dict[str, Any]:
    return {"timestamp": {"$gte": window.since, "$lt": window.until}}


def pieces(window: Window, now: datetime) -> list[tuple[str | None, datetime, datetime]]:
    """The window cut into whole rollup periods (coarsest that fit) and raw edges: a list of
    (period or None for raw events, start, end). A period whose rollups have expired is read
    raw."""
    pieces: list[tuple[str | None, datetime, datetime]] = []

    def cut(start: datetime, end: datetime, periods: list[str]) -> None:
        if start >= end:
            return
        if not periods:
            pieces.append((None, start, end))
            return
        period, finer = periods[0], periods[1:]
        size = timedelta(seconds=PERIODS[period])
        first = period_start(start, period)
        if first < start:
            first += size
        last = period_start(end, period)
        kept = now - timedelta(days=settings.ANALYTICS_ROLLUP_RETENTION_DAYS[period])
        if first >= last or last <= kept:
            cut(start, end, finer)
            return
        if first < kept:  # the expired part is read from finer periods or raw
            cut(start, period_start(kept, period) + size, finer)
            first = period_start(kept, period) + size
        else:
            cut(start, first, finer)
        pieces.append((period, first, last))
        cut(last, end, finer)

    cut(window.since, window.until, COARSEST_FIRST)
    return pieces


def window_rows(
    window: Window,
    *,
    raw: list[dict[str, Any]],
    metric: str,
    rolled: dict[str, Any],
    raw_match: dict[str, Any] | None = None,
) -> Iterator[dict[str, Any]]:
    """The rows of a window in one shape from both sources: the ``raw`` stages over the stored
    events of each edge piece (those matching ``raw_match``), and the ``rolled`` stage over the
    ``metric`` rollups of every whole period, in one aggregation. The caller merges the rows."""
    db = mongo.get_db()
    periods = []
    for period, start, end in pieces(window, datetime.now(tz=UTC)):
        if period is None:
            when = {"timestamp": {"$gte": start, "$lt": end}}
            yield from db[mongo.EVENTS].aggregate([{"$match": {**(raw_match or {}), **when}}, *raw])
        else:
            periods.append({"period": period, "start": {"$gte": start, "$lt": end}})
    if periods:
        yield from db[mongo.METRICS].aggregate(
            [{"$match": {"metric": metric, "$or": periods}}, rolled]
        )
