"""The MongoDB client of the process, configured from settings and created lazily.

MongoDB keeps the raw events (``events``, with a TTL) and the per-minute rollups
(``metrics``). The indexes the queries need are declared here, in one place, and created by
``manage.py ensure_mongo_indexes``.
"""

from __future__ import annotations

import threading

from django.conf import settings
from pymongo import ASCENDING, DESCENDING, TEXT, IndexModel, MongoClient
from pymongo.database import Database

from core.metrics import MongoCommands

_lock = threading.Lock()
_client: MongoClient | None = None

EVENTS = "events"
METRICS = "metrics"
ROLLUP_LEDGER = "rollup_ledger"  # the highest offset counted per events topic partition


def get_client() -> MongoClient:
    global _client
    with _lock:
        if _client is None:
            _client = MongoClient(
                settings.MONGO_URL,
                serverSelectionTimeoutMS=settings.MONGO_TIMEOUT_MS,
                connectTimeoutMS=settings.MONGO_TIMEOUT_MS,
                tz_aware=True,
                appname="eventhub",
                event_listeners=[MongoCommands()],
            )
        return _client


def get_db() -> Database:
    return get_client()[settings.MONGO_DB]


def close_client() -> None:
    global _client
    with _lock:
        if _client is not None:
            _client.close()
            _client = None


# Each index names the query it serves.
INDEXES: dict[str, list[IndexModel]] = {
    EVENTS: [
        # one document per event, an event being its source and id together: the pipeline's
        # insert-if-absent, GET /events/{id}[?source=] and the webhook task's lookup by id
        IndexModel(
            [("event_id", ASCENDING), ("source", ASCENDING)], name="event_key_unique", unique=True
        ),
        # GET /events?type=&severity= ordered by time
        IndexModel(
            [("type", ASCENDING), ("timestamp", DESCENDING), ("severity", DESCENDING)],
            name="type_time_severity",
        ),
        # a user's events, newest first
        IndexModel([("user_id", ASCENDING), ("timestamp", DESCENDING)], name="user_time"),
        # a source's events, newest first
        IndexModel([("source", ASCENDING), ("timestamp", DESCENDING)], name="source_time"),
        # every event of one trace
        IndexModel([("trace_id", ASCENDING)], name="trace_id"),
        # analytics: events of a window by time, and the error events of a window
        IndexModel([("timestamp", DESCENDING)], name="time"),
        IndexModel([("severity", DESCENDING), ("timestamp", DESCENDING)], name="severity_time"),
        # retention: MongoDB drops a document once expires_at has passed
        IndexModel([("expires_at", ASCENDING)], name="expires_at_ttl", expireAfterSeconds=0),
        # GET /events/search?q=
        IndexModel(
            [("search_text", TEXT)],
            name="event_text",
            default_language="none",
        ),
    ],
    METRICS: [
        # one rollup per metric, period, start and dimensions (analytics.rollups); windows of
        # one period are read by start
        IndexModel(
            [
                ("metric", ASCENDING),
                ("period", ASCENDING),
                ("start", ASCENDING),
                ("type", ASCENDING),
                ("source", ASCENDING),
                ("band", ASCENDING),
                ("code", ASCENDING),
            ],
            name="metric_period_start_dims_code_unique",
            unique=True,
        ),
        # retention of each period (ANALYTICS_ROLLUP_RETENTION_DAYS)
        IndexModel([("expires_at", ASCENDING)], name="expires_at_ttl", expireAfterSeconds=0),
    ],
}


# Indexes of earlier versions, dropped once their replacement exists.
RETIRED_INDEXES: dict[str, list[str]] = {
    # unique on the id alone: it kept one producer's event of two that share an id
    EVENTS: ["event_id_unique"],
    # per-minute counts by type alone, before rollups had periods and dimensions
    METRICS: ["minute_type_unique", "metric_period_start_dims_unique"],
}


def ensure_indexes(db: Database | None = None) -> dict[str, list[str]]:
    """Create the declared indexes and drop retired ones (idempotent, safe while the stack
    runs: a replacement is built before what it replaces goes); return the index names per
    collection."""
    db = db if db is not None else get_db()
    created = {name: db[name].create_indexes(models) for name, models in INDEXES.items()}
    for name, retired in RETIRED_INDEXES.items():
        present = set(db[name].index_information())
        for index in retired:
            if index in present:
                db[name].drop_index(index)
    return created
