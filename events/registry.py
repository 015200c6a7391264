"""The event types of the process, with their JSON Schema validators compiled once.

Publishing looks a type up here instead of querying PostgreSQL per event. The table is
reloaded when it is older than ``EVENT_TYPE_CACHE_SECONDS``; a validator is compiled again only
when its type's schema changed.

Every event is validated (by the ingest API and again by the pipeline), so the common schemas,
built from the keywords ``compile_check`` knows, are also compiled into plain Python checks
that answer "valid or not" in a fraction of jsonschema's time. jsonschema still describes the
errors of an invalid event, and decides alone for schemas using any other keyword.
"""

from __future__ import annotations

import numbers
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from jsonschema import Draft202012Validator

from events.models import EventType

Check = Callable[[Any], bool]


@dataclass(frozen=True)
class CompiledType:
    name: str
    enabled: bool
    schema_version: int
    retention_days: int
    schema: dict
    validator: Draft202012Validator
    # whether data is valid: the compiled check, or jsonschema's when the schema has keywords
    # the compiler does not know
    is_valid: Check

    def errors(self, data: Any) -> list[dict[str, str]]:
        """Where ``data`` fails the schema, as JSON pointers into the envelope (``/data/...``)."""
        if self.is_valid(data):
            return []
        found = sorted(self.validator.iter_errors(data), key=lambda e: list(e.absolute_path))
        return [{"pointer": pointer(error), "detail": error.message} for error in found]


# --- compiled checks ---------------------------------------------------------------------------
# Draft 2020-12 as jsonschema implements it, for these keywords only; a schema (or subschema)
# with any other keyword is left to jsonschema as a whole. tests/events/test_registry.py checks
# the compiled answers against jsonschema's on generated schemas and data.

ANNOTATIONS = {"title", "description", "default", "examples", "$comment", "deprecated"}
ANNOTATIONS |= {"readOnly", "writeOnly"}
# "$schema" and "$id" change nothing without references, but a "$schema" below the top level
# switches jsonschema to another draft: only the top level may have them.
TOP_LEVEL_ONLY = {"$schema", "$id"}


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and value.is_integer())


TYPE_CHECKS: dict[str, Check] = {
    "array": lambda value: isinstance(value, list),
    "boolean": lambda value: isinstance(value, bool),
    "integer": _is_integer,
    "null": lambda value: value is None,
    "number": _is_number,
    "object": lambda value: isinstance(value, dict),
    "string": lambda value: isinstance(value, str),
}


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def compile_check(schema: Any, *, top: bool = True) -> Check | None:
    """A function telling whether data satisfies ``schema``, or None when the schema uses a
    keyword (or a keyword's value) this compiler does not handle."""
    if schema is True:
        return lambda data: True
    if schema is False:
        return lambda data: False
    if not isinstance(schema, dict):
        return None
    checks: list[Check] = []
    for keyword, value in schema.items():
        if keyword in ANNOTATIONS or (top and keyword in TOP_LEVEL_ONLY):
            continue
        check = _keyword(keyword, value, schema)
        if check is None:
            return None
        checks.append(check)
    if not checks:
        return lambda data: True
    if len(checks) == 1:
        return checks[0]
    return lambda data: all(check(data) for check in checks)


def _keyword(keyword: str, value: Any, schema: dict) -> Check | None:
    if keyword == "type":
        names = value if isinstance(value, list) else [value]
        if not all(isinstance(name, str) and name in TYPE_CHECKS for name in names):
            return None
        tests = [TYPE_CHECKS[name] for name in names]
        if len(tests) == 1:
            return tests[0]
        return lambda data: any(test(data) for test in tests)
    if keyword == "required":
        if not isinstance(value, list) or not all(isinstance(name, str) for name in value):
            return None
        return lambda data: not isinstance(data, dict) or all(name in data for name in value)
    if keyword == "properties":
        if not isinstance(value, dict):
            return None
        pairs = [(name, compile_check(sub, top=False)) for name, sub in value.items()]
        if any(check is None for _, check in pairs):
            return None

        def check_properties(data: Any) -> bool:
            if not isinstance(data, dict):
                return True
            for name, check in pairs:
                if name in data and not check(data[name]):
                    return False
            return True

        return check_properties
    if keyword == "additionalProperties":
        if "patternProperties" in schema:
            return None
        declared = set(schema.get("properties") or ())
        extra = compile_check(value, top=False)
        if extra is None:
            return None

        def check_additional(data: Any) -> bool:
            if not isinstance(data, dict):
                return True
            return all(extra(data[name]) for name in data if name not in declared)

        return check_additional
    if keyword == "items":
        if "prefixItems" in schema:
            return None
        item = compile_check(value, top=False)
        if item is None:
            return None
        return lambda data: not isinstance(data, list) or all(item(each) for each in data)
    if keyword == "enum":
        if not isinstance(value, list) or not all(isinstance(each, str) for each in value):
            return None  # strings only: jsonschema's equality of other values has its own rules
        allowed = set(value)
        return lambda data: isinstance(data, str) and data in allowed
    if keyword in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if not _is_number(value):
            return None
        # written as jsonschema's tests, negated, so that NaN answers as there
        if keyword == "minimum":
            return lambda data: not (_is_number(data) and data < value)
        if keyword == "maximum":
            return lambda data: not (_is_number(data) and data > value)
        if keyword == "exclusiveMinimum":
            return lambda data: not (_is_number(data) and data <= value)
        return lambda data: not (_is_number(data) and data >= value)
    if keyword == "pattern":
        if not isinstance(value, str):
            return None
        try:
            search = re.compile(value).search  # as jsonschema: re.search, anywhere in the string
        except re.error:
            return None  # jsonschema says what is wrong with it
        return lambda data: not isinstance(data, str) or search(data) is not None
    if keyword in ("minLength", "maxLength", "minItems", "maxItems"):
        if not _is_count(value):
            return None
        kind = str if keyword.endswith("Length") else list
        if keyword.startswith("min"):
            return lambda data: not (isinstance(data, kind) and len(data) < value)
        return lambda data: not (isinstance(data, kind) and len(data) > value)
    return None


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
        return self.current().get(name)

    def current(self) -> dict[str, CompiledType]:
        """Every type by name, reloaded first when the table is stale. The pipeline looks a
        batch's types up in it, without the age check (nor a query) per event."""
        if time.monotonic() - self._loaded_at > settings.EVENT_TYPE_CACHE_SECONDS:
            self.reload()
        return self._types

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
                    validator, is_valid = known.validator, known.is_valid
                else:
                    validator = Draft202012Validator(
                        schema, format_checker=Draft202012Validator.FORMAT_CHECKER
                    )
                    is_valid = compile_check(schema) or validator.is_valid
                fresh[name] = CompiledType(
                    name, enabled, version, retention, schema, validator, is_valid
                )
            self._types = fresh
            self._loaded_at = time.monotonic()

    def invalidate(self) -> None:
        self._loaded_at = 0.0


registry = EventTypeRegistry()
