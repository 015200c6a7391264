"""The feeds behind every stream, and the bounds on them.

``EventFeed`` follows MongoDB's change stream of the ``events`` collection: every stored
event, in the order MongoDB stored them, each with its resume token as the position a client
gives back (``Last-Event-ID``) to go on without a gap or a repeat, as long as the position is
still in MongoDB's oplog. A slow client leaves the backlog in MongoDB, not in this process: the
feed reads a change only when the client has taken the one before.

``MetricsFeed`` gives each closed minute's rollups (``analytics.rollups``) once the minute is
over, and resumes after the minute a client names.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure, PyMongoError

from analytics.export import minute_metrics
from analytics.rollups import period_start
from analytics.selectors import Filters, type_condition
from core import mongo
from core.documents import document_to_event
from querylang import compile_query


class StreamRefused(Exception):
    """A stream that cannot start (or must end): an HTTP status, a problem code and title, and
    the sentence for the client."""

    def __init__(self, status: int, code: str, title: str, detail: str, retry_after=None):
        super().__init__(detail)
        self.status, self.code, self.title, self.detail = status, code, title, detail
        self.retry_after = retry_after


class Slots:
    """Streams open in this process, in all and per credential, bounded by settings."""

    def __init__(self) -> None:
        self.per_credential: Counter[str] = Counter()

    @property
    def open(self) -> int:
        return sum(self.per_credential.values())

    def take(self, credential: str) -> None:
        if self.open >= settings.STREAM_MAX_PER_PROCESS:
            raise StreamRefused(
                503,
                "too-many-streams",
                "Too many streams",
                f"This server has its {settings.STREAM_MAX_PER_PROCESS} streams open.",
                retry_after=settings.HEALTH_RETRY_AFTER,
            )
        if self.per_credential[credential] >= settings.STREAM_MAX_PER_CREDENTIAL:
            raise StreamRefused(
                429,
                "too-many-streams",
                "Too many streams",
                f"These credentials have {settings.STREAM_MAX_PER_CREDENTIAL} streams open, "
                "the most one caller may have.",
                retry_after=settings.HEALTH_RETRY_AFTER,
            )
        self.per_credential[credential] += 1

    def give_back(self, credential: str) -> None:
        self.per_credential[credential] -= 1
        if self.per_credential[credential] <= 0:
            del self.per_credential[credential]


slots = Slots()

_clients: dict[int, AsyncMongoClient] = {}


def async_db():
    """The process's async MongoDB client for the running event loop."""
    loop = id(asyncio.get_running_loop())
    client = _clients.get(loop)
    if client is None:
        client = _clients[loop] = AsyncMongoClient(
            settings.MONGO_URL,
            serverSelectionTimeoutMS=settings.MONGO_TIMEOUT_MS,
            connectTimeoutMS=settings.MONGO_TIMEOUT_MS,
            tz_aware=True,
            appname="eventhub-streams",
        )
    return client[settings.MONGO_DB]


def _unavailable(exc: Exception) -> StreamRefused:
    return StreamRefused(
        503,
        "dependency-unavailable",
        "Service unavailable",
        f"MongoDB cannot be reached ({type(exc).__name__}); try again shortly.",
        retry_after=settings.HEALTH_RETRY_AFTER,
    )


@dataclass
class Change:
    position: str  # the resume token: Last-Event-ID
    event: dict[str, Any]  # the event as the API shows it
    document: dict[str, Any]  # as stored


class EventFeed:
    """The stored events that pass ``filters``, from now or after ``resume``."""

    def __init__(self, filters: Filters, resume: str | None = None) -> None:
        self.filters = filters
        self.resume = resume
        self._stream = None
        self._keep = compile_query(filters.query) if filters.query else None

    def _pipeline(self) -> list[dict[str, Any]]:
        match: dict[str, Any] = {"operationType": "insert"}
        if self.filters.types and "*" not in self.filters.types:
            match.update(type_condition(self.filters.types, field="fullDocument.type"))
        if self.filters.source is not None:
            match["fullDocument.source"] = self.filters.source
        if self.filters.subject is not None:
            match["fullDocument.user_id"] = self.filters.subject
        return [{"$match": match}]

    async def open(self) -> None:
        """Start following: from here on nothing stored is missed (raises StreamRefused)."""
        options: dict[str, Any] = {"max_await_time_ms": 1000}
        if self.resume:
            options["resume_after"] = {"_data": self.resume}
        try:
            self._stream = await async_db()[mongo.EVENTS].watch(self._pipeline(), **options)
        except OperationFailure as exc:
            if self.resume:
                raise StreamRefused(
                    400,
                    "invalid-position",
                    "Cannot resume there",
                    "Last-Event-ID is not a position this stream can resume from (it may be "
                    "older than MongoDB's oplog keeps): reconnect without it.",
                ) from exc
            raise _unavailable(exc) from exc
        except PyMongoError as exc:
            raise _unavailable(exc) from exc

    async def next(self) -> Change | None:
        """The next change, or None when nothing came for a second (time for a heartbeat)."""
        while True:
            try:
                change = await self._stream.try_next()
            except PyMongoError as exc:
                raise _unavailable(exc) from exc
            if change is None:
                return None
            document = change["fullDocument"]
            if self._keep is not None and not self._keep(document):
                continue
            return Change(change["_id"]["_data"], document_to_event(document), document)

    async def close(self) -> None:
        if self._stream is not None:
            await self._stream.close()


class MetricsFeed:
    """Each closed minute's event counts (all, by type, errors) from the 1m rollups, a few
    seconds after the minute ends (``STREAM_METRICS_DELAY_SECONDS``); after ``resume`` (a
    minute's start, ISO 8601) the minutes since then come first."""

    def __init__(self, filters: Filters, resume: str | None = None) -> None:
        self.filters = filters
        now = datetime.now(tz=UTC)
        self.next_minute = period_start(now, "1m")
        if resume:
            try:
                after = datetime.fromisoformat(resume.replace("Z", "+00:00"))
            except ValueError as exc:
                raise StreamRefused(
                    400,
                    "invalid-position",
                    "Cannot resume there",
                    "Last-Event-ID must be the start of a minute this stream sent.",
                ) from exc
            if after.tzinfo is None:
                after = after.replace(tzinfo=UTC)
            oldest = now - timedelta(days=settings.ANALYTICS_ROLLUP_RETENTION_DAYS["1m"])
            self.next_minute = max(period_start(after, "1m") + timedelta(minutes=1), oldest)
            self.next_minute = period_start(self.next_minute, "1m")

    async def open(self) -> None:
        pass

    async def next(self) -> Change | None:
        closes = self.next_minute + timedelta(
            minutes=1, seconds=settings.STREAM_METRICS_DELAY_SECONDS
        )
        wait = (closes - datetime.now(tz=UTC)).total_seconds()
        if wait > 0:
            await asyncio.sleep(min(wait, 1.0))
            return None
        minute = self.next_minute
        self.next_minute = minute + timedelta(minutes=1)
        try:
            metrics = await asyncio.to_thread(minute_metrics, minute, self.filters)
        except PyMongoError as exc:
            raise _unavailable(exc) from exc
        return Change(metrics["minute"], metrics, {})

    async def close(self) -> None:
        pass
