"""Pieces every REST API of EventHub shares: the problem+json shape as OpenAPI documents it
(with the answers every operation can give, added by ``ProblemAutoSchema``), and the duration
field of the configuration APIs."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from drf_spectacular.extensions import OpenApiSerializerFieldExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse
from rest_framework import serializers

from core.durations import LONGEST, NONZERO_PATTERN, PATTERN, InvalidDuration, parse_duration

PROBLEM = "application/problem+json"


class ProblemSerializer(serializers.Serializer):
    """RFC 7807 problem details, the shape of every API error."""

    type = serializers.URLField()
    title = serializers.CharField()
    status = serializers.IntegerField()
    detail = serializers.CharField()
    errors = serializers.ListField(
        child=serializers.DictField(),
        required=False,
        help_text='Invalid fields: [{"pointer": "/data/amount", "detail": "..."}]',
    )


def problems(**descriptions: str) -> dict:
    """OpenAPI responses in the problem+json shape, keyed by status."""
    return {
        (int(code[1:]), PROBLEM): OpenApiResponse(ProblemSerializer, description=text)
        for code, text in descriptions.items()
    }


BODY_METHODS = {"POST", "PUT", "PATCH"}

# The JSON type each kind of field reads, most specific first (a ChoiceField, a JSONField or a
# duration take several).
JSON_TYPES: list[tuple[type[serializers.Field], tuple[type, ...] | None, str]] = [
    (serializers.BooleanField, (bool,), "true or false"),
    (serializers.ChoiceField, None, ""),
    (serializers.CharField, (str,), "a string"),
    (serializers.IntegerField, (int,), "an integer"),
    (serializers.FloatField, (int, float), "a number"),
    (serializers.ListField, (list,), "an array"),
    (serializers.DictField, (dict,), "an object"),
    (serializers.PrimaryKeyRelatedField, (int,), "an integer id"),
    (serializers.DateTimeField, (str,), "a date-time string"),
]


def json_type(field: serializers.Field) -> tuple[tuple[type, ...], str] | None:
    for kind, types, label in JSON_TYPES:
        if isinstance(field, kind):
            return (types, label) if types else None
    return None


def _type_fault(value: Any, expected: tuple[tuple[type, ...], str] | None) -> str | None:
    if expected is None or value is None:
        return None
    types, label = expected
    if (isinstance(value, bool) and bool not in types) or not isinstance(value, types):
        return f"Expected {label}."
    return None


class StrictTypes:
    """A serializer mixin: a body's values must have the JSON type the schema names.

    DRF reads ``0`` as ``"0"`` for a string, ``"5"`` as 5 for an integer and ``"yes"`` as
    true, which suits HTML forms; the API reads JSON only, and its schema promises types."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, Mapping):
            errors = {}
            for field in self.fields.values():
                value = data.get(field.field_name)
                expected = None if field.read_only or value is None else json_type(field)
                if expected is None:
                    continue
                fault = _type_fault(value, expected)
                if fault is None and isinstance(field, serializers.ListField):
                    item_type = json_type(field.child)
                    faults = [_type_fault(item, item_type) for item in value]
                    fault = next((f"/{i}: {f}" for i, f in enumerate(faults) if f), None)
                if fault is not None:
                    errors[field.field_name] = [fault]
            if errors:
                raise serializers.ValidationError(errors)
        return super().to_internal_value(data)


class StringField(serializers.CharField):
    """A string and nothing else (DRF's ``CharField`` also takes numbers), for values nested
    where ``StrictTypes`` does not look (the values of a ``DictField``)."""

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class OptionalEmailField(serializers.EmailField):
    """An email address or null (stored as the model's blank); "" is no address, so it is
    refused on input and never shown: the schema promises an email or null."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_null", True)
        kwargs.setdefault("required", False)
        super().__init__(**kwargs)

    def run_validation(self, data: Any = serializers.empty) -> str:
        value = super().run_validation(data)
        return "" if value is None else value

    def to_representation(self, value: str) -> str | None:
        return value or None


class Serializer(StrictTypes, serializers.Serializer):
    """The base of the API's request serializers."""


class ModelSerializer(StrictTypes, serializers.ModelSerializer):
    """The base of the API's model serializers."""


class ProblemAutoSchema(AutoSchema):
    """drf-spectacular's schema plus the problems any operation can answer, as its views do:
    401/403 where a role is needed, 404 under a path parameter, 400 and 415 for a body (and
    400 for query parameters), 429 where a throttle applies, 503 everywhere (a dependency down).
    A view's own ``problems(...)`` keep their more precise descriptions."""

    def _map_serializer_field(self, field, direction, bypass_extensions=False) -> dict:
        schema = super()._map_serializer_field(field, direction, bypass_extensions)
        if (
            direction == "request"
            and isinstance(field, serializers.CharField)
            and not field.allow_blank
            and schema.get("type") == "string"
            and "enum" not in schema
        ):
            schema.setdefault("minLength", 1)  # DRF refuses "" unless the field allows blank
        return schema

    def _get_request_body(self, direction="request") -> dict | None:
        body = super()._get_request_body(direction)
        if body is not None and getattr(self.view, "body_required", False):
            body["required"] = True  # a view that reads its own body says it needs one
        return body

    def _get_response_bodies(self, direction="response") -> dict:
        responses = super()._get_response_bodies(direction)
        for code, description in self._common_problems().items():
            if str(code) not in responses:
                responses[str(code)] = self._get_response_for_code(
                    OpenApiResponse(ProblemSerializer, description=description),
                    str(code),
                    [PROBLEM],
                    direction,
                )
        return dict(sorted(responses.items()))

    def _common_problems(self) -> dict[int, str]:
        common: dict[int, str] = {}
        if (
            self.method in BODY_METHODS
            or self.get_override_parameters()
            or (self.method == "GET" and self._is_list_view())
        ):
            common[400] = "Malformed request or invalid fields (errors name JSON pointers)"
        if self.view.get_permissions():
            common[401] = "Not authenticated (or the credentials were refused)"
            common[403] = "The caller's role does not allow this"
        if "{" in self.path or self.method == "GET":
            common[404] = "Nothing at this address (or an unknown cursor)"
        if self.method in BODY_METHODS:
            common[409] = "Conflicts with what exists (a name already taken)"
            common[415] = "A body of a media type this operation does not read"
            common[422] = (
                "Well formed but refused by rules no schema states, or naming an id that does "
                "not exist (errors name JSON pointers)"
            )
        if self.view.get_throttles():
            common[429] = "Rate limited (Retry-After)"
        common[503] = "A dependency is unavailable (Retry-After)"
        return common


class DurationField(serializers.Field):
    """A duration written as ``"2h"`` or as seconds; ``timedelta`` inside. Its schema states
    what the parser takes (``DurationFieldScheme``)."""

    def __init__(self, *, allow_zero: bool = False, **kwargs: Any) -> None:
        self.allow_zero = allow_zero
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> timedelta:
        try:
            return parse_duration(data, allow_zero=self.allow_zero)
        except InvalidDuration as exc:
            raise serializers.ValidationError(str(exc)) from exc

    def to_representation(self, value: timedelta) -> int:
        return int(value.total_seconds())


class DurationFieldScheme(OpenApiSerializerFieldExtension):
    target_class = DurationField

    def map_serializer_field(self, auto_schema, direction) -> dict[str, Any]:
        zero = self.target.allow_zero
        return {
            "oneOf": [
                {
                    "type": "string",
                    "pattern": f"^{(PATTERN if zero else NONZERO_PATTERN).pattern}$",
                    "example": "2h",
                },
                {"type": "integer", "minimum": 0 if zero else 1},
            ],
            "description": "A duration: seconds, or a number and a unit (90s, 30m, 2h, 1d, 1w); "
            f"longer than {LONGEST.days}d means {LONGEST.days}d.",
        }
