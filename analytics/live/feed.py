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
import json
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from pymongo import AsyncMongoClient
from pymongo.errors import OperationFailure, PyMongoError

from analytics.export import minute_metrics
from analytics.rollups import period_start
from analytics.windows import Filters
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


class Change:
    """One item of a feed: its position (a resume token: Last-Event-ID), the event as the
    API shows it, as stored, and its JSON text (made once, whichever streams send it)."""

    __slots__ = ("_event", "_json", "document", "position")

    def __init__(self, position: str, event: dict | None, document: dict[str, Any]) -> None:
        self.position, self._event, self.document, self._json = position, event, document, None

    @property
    def event(self) -> dict[str, Any]:
        if self._event is None:
            self._event = document_to_event(self.document)
        return self._event

    @property
    def json(self) -> str:
        if self._json is None:
            self._json = json.dumps(self.event, default=str, separators=(",", ":"))
        return self._json


def _predicate(filters: Filters):
    """Whether a stored event passes the filters (for streams that share one change stream)."""
    exact = {t for t in filters.types if not t.endswith(".*")}
    prefixes = tuple(t[:-1] for t in filters.types if t.endswith(".*"))
    every_type = not filters.types or "*" in filters.types
    query = compile_query(filters.query) if filters.query else None

    def keep(document: dict[str, Any]) -> bool:
        kind = document.get("type", "")
        if not every_type and kind not in exact and not (prefixes and kind.startswith(prefixes)):
            return False
        if filters.source is not None and document.get("source") != filters.source:
            return False
        if filters.subject is not None and document.get("user_id") != filters.subject:
            return False
        return query is None or query(document)

    return keep


class _Follower:
    """A stream that follows the shared change stream: its filter and a bounded queue. One
    that falls ``STREAM_BUFFER_EVENTS`` behind is ended (it reconnects with its last id)."""

    def __init__(self, filters: Filters) -> None:
        self.keep = _predicate(filters)
        self.queue: asyncio.Queue = asyncio.Queue(maxsize=settings.STREAM_BUFFER_EVENTS)
        self.failure: StreamRefused | None = None

    def offer(self, change: Change) -> None:
        if self.failure is not None or not self.keep(change.document):
            return
        try:
            self.queue.put_nowait(change)
        except asyncio.QueueFull:
            self.fail(
                StreamRefused(
                    408,
                    "client-too-slow",
                    "Client too slow",
                    f"The client fell {settings.STREAM_BUFFER_EVENTS} events behind; "
                    "reconnect with Last-Event-ID to go on.",
                )
            )

    def fail(self, refused: StreamRefused) -> None:
        self.failure = refused
        while True:  # wake the stream: it ends at once, whatever it had not sent yet
            try:
                self.queue.put_nowait(None)
                return
            except asyncio.QueueFull:
                self.queue.get_nowait()

    async def next(self) -> Change | None:
        if self.failure is not None:
            raise self.failure
        try:
            change = self.queue.get_nowait()  # the common case under load: no timer, no task
        except asyncio.QueueEmpty:
            try:
                change = await asyncio.wait_for(self.queue.get(), 1.0)
            except TimeoutError:
                return None
        if change is None:
            raise self.failure
        return change


class _Hub:
    """One change stream of every stored event per event loop, read once for all the streams
    that start from now (a stream resuming from a position has its own)."""

    def __init__(self) -> None:
        self.followers: set[_Follower] = set()
        self._reading = False
        self._lock = asyncio.Lock()

    async def join(self, follower: _Follower) -> None:
        async with self._lock:
            if not self._reading:
                try:
                    stream = await async_db()[mongo.EVENTS].watch(
                        [{"$match": {"operationType": "insert"}}], max_await_time_ms=1000
                    )
                except PyMongoError as exc:
                    raise _unavailable(exc) from exc
                self._reading = True
                self._task = asyncio.ensure_future(self._read(stream))
            self.followers.add(follower)

    def leave(self, follower: _Follower) -> None:
        self.followers.discard(follower)

    async def _read(self, stream) -> None:
        try:
            while True:
                try:
                    change = await stream.try_next()
                except PyMongoError as exc:
                    failure = _unavailable(exc)
                    for follower in list(self.followers):
                        follower.fail(failure)
                    self.followers.clear()
                    self._reading = False
                    return
                if change is not None:
                    item = Change(change["_id"]["_data"], None, change["fullDocument"])
                    for follower in list(self.followers):
                        follower.offer(item)
                if not self.followers:  # no await since the check: a join opens a new one
                    self._reading = False
                    return
        finally:
            await stream.close()


_hubs: dict[int, _Hub] = {}


def _hub() -> _Hub:
    loop = id(asyncio.get_running_loop())
    hub = _hubs.get(loop)
    if hub is None:
        hub = _hubs[loop] = _Hub()
    return hub


class EventFeed:
    """The stored events that pass ``filters``, from now (on the shared change stream) or
    after ``resume`` (on a change stream of its own, from that resume token)."""

    def __init__(self, filters: Filters, resume: str | None = None) -> None:
        self.filters = filters
        self.resume = resume
        self._stream = None
        self._follower: _Follower | None = None
        self._keep = compile_query(filters.query) if filters.query else None

    def _pipeline(self) -> list[dict[str, Any]]:
        # the query is applied here, with the evaluator routing uses
        return [{"$match": {"operationType": "insert", **self.filters.match("fullDocument.")}}]

    async def open(self) -> None:
        """Start following: from here on nothing stored is missed (raises StreamRefused)."""
        if not self.resume:
            self._follower = _Follower(self.filters)
            await _hub().join(self._follower)
            return
        try:
            self._stream = await async_db()[mongo.EVENTS].watch(
                self._pipeline(), max_await_time_ms=1000, resume_after={"_data": self.resume}
            )
        except OperationFailure as exc:
            raise StreamRefused(
                400,
                "invalid-position",
                "Cannot resume there",
                "Last-Event-ID is not a position this stream can resume from (it may be "
                "older than MongoDB's oplog keeps): reconnect without it.",
            ) from exc
        except PyMongoError as exc:
            raise _unavailable(exc) from exc

    async def next(self) -> Change | None:
        """The next change, or None when nothing came for a second (time for a heartbeat)."""
        if self._follower is not None:
            return await self._follower.next()
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
            return Change(change["_id"]["_data"], None, document)

    async def close(self) -> None:
        if self._follower is not None:
            _hub().leave(self._follower)
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
