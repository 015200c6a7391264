"""An event's identity: its ``source`` and ``id`` together, as CloudEvents defines it.

Two producers may publish the same ``id`` (order numbers, counters): they are two events.
Every place that stores, matches or looks up an event uses both: the MongoDB document's unique
index (``event_id``, ``source``), the delivery and rule-match rows (``event_id``,
``event_source``), the webhook task's lookup, the DLQ message, the rule engine's threshold and
cooldown members in Redis, and the read APIs (``GET /api/v1/events/{id}?source=``).
"""

from __future__ import annotations

import json
import logging
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

logger = logging.getLogger(__name__)

EventKey = tuple[str, str]  # (source, id)

# the source of the test events that subscriptions' "send test" makes (never in MongoDB)
TEST_SOURCE = "eventhub"


def document_key(document: Mapping[str, Any]) -> EventKey:
    """The key of a stored event (a MongoDB document)."""
    return document["source"], document["event_id"]


def envelope_key(envelope: Mapping[str, Any]) -> EventKey:
    return envelope["source"], envelope["id"]


def key_member(key: EventKey) -> str:
    """The key as one string (a Redis member or value): unambiguous whatever the parts hold."""
    return json.dumps(key, ensure_ascii=False, separators=(",", ":"))


def backfill_event_sources(model, schema_editor, *, chunk: int = 1000) -> int:
    """Fill ``event_source`` of rows that have none from the events in MongoDB (migrations
    that add the column). Until then MongoDB held one document per id, so the match is exact.
    Rows whose event has expired keep an empty source. Returns the rows updated."""
    rows = model.objects.using(schema_editor.connection.alias).filter(event_source="")
    updated = 0
    if any(field.name == "is_test" for field in model._meta.get_fields()):
        updated += rows.filter(is_test=True).update(event_source=TEST_SOURCE)
    ids = list(rows.values_list("event_id", flat=True).distinct().order_by())
    if not ids:
        return updated
    from core import mongo

    events = mongo.get_db()[mongo.EVENTS]
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        by_source: dict[str, list[str]] = defaultdict(list)
        for document in events.find({"event_id": {"$in": part}}, {"event_id": 1, "source": 1}):
            by_source[document["source"]].append(document["event_id"])
        for source, same in by_source.items():
            updated += rows.filter(event_id__in=same).update(event_source=source)
    missing = rows.count()
    if missing:
        logger.warning(
            "%d %s row(s) name events no longer stored: source left empty",
            missing,
            model._meta.label,
        )
    return updated
