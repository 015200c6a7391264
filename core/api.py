"""Pieces every REST API of EventHub shares: the problem+json shape as OpenAPI documents it
(with the answers every operation can give, added by ``ProblemAutoSchema``), and the duration
field of the configuration APIs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse, extend_schema_field
from rest_framework import serializers

from core.durations import InvalidDuration, parse_duration

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


class ProblemAutoSchema(AutoSchema):
    """drf-spectacular's schema plus the problems any operation can answer, as its views do:
    401/403 where a role is needed, 404 under a path parameter, 400 and 415 for a body (and
    400 for query parameters), 429 where a throttle applies, 503 everywhere (a dependency down).
    A view's own ``problems(...)`` keep their more precise descriptions."""

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
        if "{" in self.path:
            common[404] = "Nothing at this address"
        if self.method in BODY_METHODS:
            common[415] = "A body of a media type this operation does not read"
        if self.view.get_throttles():
            common[429] = "Rate limited (Retry-After)"
        common[503] = "A dependency is unavailable (Retry-After)"
        return common


@extend_schema_field(
    {
        "oneOf": [{"type": "string", "example": "2h"}, {"type": "integer", "minimum": 1}],
        "description": "A duration: seconds, or a number and a unit (90s, 30m, 2h, 1d, 1w).",
    }
)
class DurationField(serializers.Field):
    """A duration written as ``"2h"`` or as seconds; ``timedelta`` inside."""

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
