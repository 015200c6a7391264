"""Pieces every REST API of EventHub shares: the problem+json shape as OpenAPI documents it,
and the duration field of the configuration APIs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

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
