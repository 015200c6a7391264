"""The shape of a raw event in MongoDB's ``events`` collection, and its API representation.

The pipeline writes one document per event with ``event_document``; the read API and the
webhook bodies turn them back into envelopes with ``document_to_event``.

An event has three shapes for its users (the flat form or the envelope producers send, the
stored document, the paths filters and rules name), mapped here and nowhere else: ``MAPPING``
lists the fields, the README's "One event, three shapes" shows them as a table, and
tests/core/test_documents.py checks every row. Filters name the stored field.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

# (flat form field, envelope attribute, stored document field): the table above, row by row
MAPPING: tuple[tuple[str, str, str], ...] = (
    ("event_id", "id", "event_id"),
    ("source", "source", "source"),
    ("event_type", "type", "type"),
    ("user_id", "subject", "user_id"),
    ("timestamp", "time", "timestamp"),
    ("severity", "severity", "severity"),
    ("payload", "data", "payload"),
    ("metadata", "metadata", "metadata"),
    ("trace_id", "traceid", "trace_id"),
    ("session_id", "sessionid", "session_id"),
    ("partition_key", "partitionkey", "partition_key"),
)


def _texts(value: Any, found: list[str]) -> list[str]:
    """Append the strings inside ``value`` (depth first, in order) to ``found``."""
    if isinstance(value, str):
        found.append(value)
    elif isinstance(value, dict):
        for item in value.values():
            if isinstance(item, str):
                found.append(item)
            elif isinstance(item, dict | list):
                _texts(item, found)
    elif isinstance(value, list):
        for item in value:
            if isinstance(item, str):
                found.append(item)
            elif isinstance(item, dict | list):
                _texts(item, found)
    return found


def event_document(
    envelope: dict[str, Any],
    *,
    retention_days: int,
    received_at: datetime | None = None,
    expires_at: datetime | None = None,
) -> dict[str, Any]:
    """The MongoDB document of an envelope (``expires_at`` drives the TTL index; callers
    storing a batch pass it, computed once from ``received_at`` and ``retention_days``)."""
    received_at = received_at or datetime.now(tz=UTC)
    subject = envelope.get("subject")
    data = envelope.get("data")
    metadata = envelope.get("metadata") or {}
    return {
        "event_id": envelope["id"],
        "type": envelope["type"],
        "source": envelope["source"],
        "subject": subject,
        "user_id": subject,
        "severity": envelope.get("severity"),
        "timestamp": datetime.fromisoformat(envelope["time"]),
        "session_id": envelope.get("sessionid"),
        "trace_id": envelope.get("traceid"),
        "payload": data,
        "metadata": metadata,
        "partition_key": envelope.get("partitionkey") or subject,
        "received_at": received_at,
        "expires_at": expires_at or received_at + timedelta(days=retention_days),
        "search_text": " ".join(_texts(metadata, _texts(data, []))),
    }


def _iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def document_to_event(document: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": document["event_id"],
        "type": document["type"],
        "source": document["source"],
        "subject": document.get("subject"),
        "time": _iso(document.get("timestamp")),
        "severity": document.get("severity"),
        "data": document.get("payload"),
        "metadata": document.get("metadata") or {},
        "traceid": document.get("trace_id"),
        "sessionid": document.get("session_id"),
        "partitionkey": document.get("partition_key"),
        "received_at": _iso(document.get("received_at")),
    }
