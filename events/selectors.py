"""Reads of raw events from MongoDB: filtered lists with cursor pagination, one event, search."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import DESCENDING
from pymongo.errors import OperationFailure

from core import mongo
from core.pagination import InvalidCursor
from core.problems import DependencyUnavailable, ProblemError

INDEX_NOT_FOUND = 27


class EventAmbiguous(ProblemError):
    """Several sources published an event with the id asked for, and no source was named."""

    status_code = 409
    default_code = "event-ambiguous"
    default_detail = "Several events have this id; name the source too."
    title = "Ambiguous event id"


# sources listed in the answer to an ambiguous id
AMBIGUOUS_SOURCES_SHOWN = 20


@dataclass
class EventFilters:
    type: str | None = None
    source: str | None = None
    subject: str | None = None
    severity_min: int | None = None
    severity_max: int | None = None
    since: datetime | None = None
    until: datetime | None = None

    def query(self) -> dict[str, Any]:
        query: dict[str, Any] = {}
        if self.type:
            query["type"] = self.type
        if self.source:
            query["source"] = self.source
        if self.subject:
            query["user_id"] = self.subject
        severity = {}
        if self.severity_min is not None:
            severity["$gte"] = self.severity_min
        if self.severity_max is not None:
            severity["$lte"] = self.severity_max
        if severity:
            query["severity"] = severity
        timestamp = {}
        if self.since is not None:
            timestamp["$gte"] = self.since
        if self.until is not None:
            timestamp["$lt"] = self.until
        if timestamp:
            query["timestamp"] = timestamp
        return query


def encode_cursor(document: dict[str, Any]) -> str:
    """The position after ``document`` in the list's order (time, id, source: an event is
    its source and id, so events of one moment with one id stay apart)."""
    raw = json.dumps([document["timestamp"].isoformat(), document["event_id"], document["source"]])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        # cursors given out before the source joined them have two parts; they still work
        moment, event_id, *source = json.loads(base64.urlsafe_b64decode(padded))
        if len(source) > 1:
            raise ValueError("too many parts")
        return datetime.fromisoformat(moment), str(event_id), str(source[0]) if source else ""
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidCursor() from exc


def events_list(
    *, filters: EventFilters, limit: int = 50, cursor: str | None = None, offset: int = 0
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; returns the page and the cursor of the next page (None at the end)."""
    query = filters.query()
    if cursor:
        moment, event_id, source = decode_cursor(cursor)
        after = {
            "$or": [
                {"timestamp": {"$lt": moment}},
                {"timestamp": moment, "event_id": {"$lt": event_id}},
                {"timestamp": moment, "event_id": event_id, "source": {"$lt": source}},
            ]
        }
        query = {"$and": [query, after]} if query else after
    documents = list(
        mongo.get_db()[mongo.EVENTS]
        .find(query, {"_id": 0, "search_text": 0})
        .sort([("timestamp", DESCENDING), ("event_id", DESCENDING), ("source", DESCENDING)])
        .skip(offset)
        .limit(limit + 1)
    )
    next_cursor = encode_cursor(documents[limit - 1]) if len(documents) > limit else None
    return documents[:limit], next_cursor


def event_get(event_id: str, source: str | None = None) -> dict[str, Any] | None:
    """The stored event with this id (and source). Without a source the id must name one
    event: when several sources used it, ``EventAmbiguous`` lists them."""
    query = {"event_id": event_id}
    if source is not None:
        query["source"] = source
    documents = list(
        mongo.get_db()[mongo.EVENTS]
        .find(query, {"_id": 0, "search_text": 0})
        .sort("source", 1)
        .limit(AMBIGUOUS_SOURCES_SHOWN + 1)
    )
    if len(documents) > 1:
        sources = [d["source"] for d in documents[:AMBIGUOUS_SOURCES_SHOWN]]
        raise EventAmbiguous(
            f"{'More than ' if len(documents) > AMBIGUOUS_SOURCES_SHOWN else ''}"
            f"{len(sources)} events have the id {event_id!r}, each from another source: "
            "name the source too (?source=).",
            extra={"sources": sources},
        )
    return documents[0] if documents else None


# Deepest a search's pages go: each page skips the matches of those before it.
SEARCH_MAX_OFFSET = 10_000


def _search_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"offset": offset}).encode()).decode().rstrip("=")


def _search_offset(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        offset = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))["offset"]
    except (ValueError, TypeError, KeyError, binascii.Error) as exc:
        raise InvalidCursor() from exc
    if not isinstance(offset, int) or not 0 < offset <= SEARCH_MAX_OFFSET:
        raise InvalidCursor()
    return offset


def events_search(
    *, text: str, limit: int = 50, cursor: str | None = None
) -> tuple[list[dict[str, Any]], str | None]:
    """Events whose payload or metadata text matches, best match first; returns the page and
    the cursor of the next one (None at the end, or past ``SEARCH_MAX_OFFSET`` matches)."""
    offset = _search_offset(cursor)
    try:
        documents = list(
            mongo.get_db()[mongo.EVENTS]
            .find(
                {"$text": {"$search": text}},
                {"_id": 0, "search_text": 0, "score": {"$meta": "textScore"}},
            )
            # _id breaks ties of score, so the pages of one search neither repeat nor skip
            .sort([("score", {"$meta": "textScore"}), ("_id", 1)])
            .skip(offset)
            .limit(limit + 1)
        )
    except OperationFailure as exc:
        if exc.code == INDEX_NOT_FOUND:
            raise DependencyUnavailable(
                "Search is not ready: the text index is missing "
                "(python manage.py ensure_mongo_indexes)."
            ) from exc
        raise
    following = offset + limit
    more = len(documents) > limit and following <= SEARCH_MAX_OFFSET
    return documents[:limit], _search_cursor(following) if more else None
