"""The shape of a raw event in MongoDB's ``events`` collection, and its API representation.

The pipeline writes one document per event with ``event_document``; the read API turns them
back into envelopes with ``document_to_event``.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any


def _texts(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _texts(item)]
    if isinstance(value, list):
        return [text for item in value for text in _texts(item)]
    return []


def event_document(
    envelope: dict[str, Any], *, retention_days: int, received_at: datetime | None = None
) -> dict[str, Any]:
    """The MongoDB document of an envelope (``expires_at`` drives the TTL index)."""
    received_at = received_at or datetime.now(tz=UTC)
    timestamp = datetime.fromisoformat(envelope["time"])
    data = envelope.get("data")
    metadata = envelope.get("metadata") or {}
    return {
        "event_id": envelope["id"],
        "type": envelope["type"],
        "source": envelope["source"],
        "subject": envelope.get("subject"),
        "user_id": envelope.get("subject"),
        "severity": envelope.get("severity"),
        "timestamp": timestamp,
        "session_id": envelope.get("sessionid"),
        "trace_id": envelope.get("traceid"),
        "payload": data,
        "metadata": metadata,
        "partition_key": envelope.get("partitionkey") or envelope.get("subject"),
        "received_at": received_at,
        "expires_at": received_at + timedelta(days=retention_days),
        "search_text": " ".join(_texts(data) + _texts(metadata)),
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
