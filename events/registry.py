"""The event types of the process, with their JSON Schema validators compiled once.

Publishing looks a type up here instead of querying PostgreSQL per event. The table is
reloaded when it is older than ``EVENT_TYPE_CACHE_SECONDS``; a validator is compiled again only
when its type's schema changed.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from jsonschema import Draft202012Validator

from events.models import EventType


@dataclass(frozen=True)
class CompiledType:
    name: str
    enabled: bool
    schema_version: int
    retention_days: int
    schema: dict
    validator: Draft202012Validator

    def errors(self, data: Any) -> list[dict[str, str]]:
        """Where ``data`` fails the schema, as JSON pointers into the envelope (``/data/...``)."""
        found = sorted(self.validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        return [{"pointer": pointer(error), "detail": error.message} for error in found]


def pointer(error) -> str:
    """The JSON pointer of a schema error inside the envelope; a missing required property
    is pointed at itself, not at its parent object."""
    path = [str(part) for part in error.absolute_path]
    if error.validator == "required":
        missing = [name for name in error.validator_value if repr(name) in error.message]
        if missing:
            path.append(missing[0])
    return "/data" + "".join(f"/{part.replace('~', '~0').replace('/', '~1')}" for part in path)


class EventTypeRegistry:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._types: dict[str, CompiledType] = {}
        self._loaded_at = 0.0

    def get(self, name: str) -> CompiledType | None:
        if time.monotonic() - self._loaded_at > settings.EVENT_TYPE_CACHE_SECONDS:
            self.reload()
        return self._types.get(name)

    def reload(self) -> None:
        rows = EventType.objects.values_list(
            "name", "enabled", "schema_version", "retention_days", "schema"
        )
        with self._lock:
            previous = self._types
            fresh: dict[str, CompiledType] = {}
            for name, enabled, version, retention, schema in rows:
                known = previous.get(name)
                # the schema itself decides: a type deleted and created again restarts its
                # version at 1 with another schema
                if known is not None and known.schema == schema:
                    validator = known.validator
                else:
                    validator = Draft202012Validator(
                        schema, format_checker=Draft202012Validator.FORMAT_CHECKER
                    )
                fresh[name] = CompiledType(name, enabled, version, retention, schema, validator)
            self._types = fresh
            self._loaded_at = time.monotonic()

    def invalidate(self) -> None:
        self._loaded_at = 0.0


registry = EventTypeRegistry()
