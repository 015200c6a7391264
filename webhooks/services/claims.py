"""A delivery as a worker holds it once claimed: the named type the sending, the recording
and the dead letters share."""

from __future__ import annotations

from dataclasses import dataclass

from core.identity import EventKey


@dataclass
class Claimed:
    id: int
    event_id: str
    event_source: str
    subscription_id: int
    partition_key: str
    attempt: int  # this attempt's number
    retry_index: int  # attempts since the last operator retry or replay
    traceparent: str = ""  # the event's consume span (tracing on)

    @property
    def event_key(self) -> EventKey:
        return self.event_source, self.event_id
