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

from eventhub import mongo
from eventhub.problems import DependencyUnavailable, ProblemError

INDEX_NOT_FOUND = 27


class InvalidCursor(ProblemError):
    default_code = "invalid-cursor"
    default_detail = "The cursor is not one this API gave out."
    title = "Invalid cursor"


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
    raw = json.dumps([document["timestamp"].isoformat(), document["event_id"]])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        moment, event_id = json.loads(base64.urlsafe_b64decode(padded))
        return datetime.fromisoformat(moment), str(event_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise InvalidCursor() from exc


def events_list(
    *, filters: EventFilters, limit: int = 50, cursor: str | None = None, offset: int = 0
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first; returns the page and the cursor of the next page (None at the end)."""
    query = filters.query()
    if cursor:
        moment, event_id = decode_cursor(cursor)
        after = {
            "$or": [
                {"timestamp": {"$lt": moment}},
                {"timestamp": moment, "event_id": {"$lt": event_id}},
            ]
        }
        query = {"$and": [query, after]} if query else after
    documents = list(
        mongo.get_db()[mongo.EVENTS]
        .find(query, {"_id": 0, "search_text": 0})
        .sort([("timestamp", DESCENDING), ("event_id", DESCENDING)])
        .skip(offset)
        .limit(limit + 1)
    )
    next_cursor = encode_cursor(documents[limit - 1]) if len(documents) > limit else None
    return documents[:limit], next_cursor


def event_get(event_id: str) -> dict[str, Any] | None:
    return mongo.get_db()[mongo.EVENTS].find_one(
        {"event_id": event_id}, {"_id": 0, "search_text": 0}
    )


def events_search(*, text: str, limit: int = 50) -> list[dict[str, Any]]:
    """Events whose payload or metadata text matches, best match first."""
    try:
        return list(
            mongo.get_db()[mongo.EVENTS]
            .find(
                {"$text": {"$search": text}},
                {"_id": 0, "search_text": 0, "score": {"$meta": "textScore"}},
            )
            .sort([("score", {"$meta": "textScore"})])
            .limit(limit)
        )
    except OperationFailure as exc:
        if exc.code == INDEX_NOT_FOUND:
            raise DependencyUnavailable(
                "Search is not ready: the text index is missing "
                "(python manage.py ensure_mongo_indexes)."
            ) from exc
        raise
