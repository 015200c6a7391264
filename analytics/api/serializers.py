"""Query parameters and documented answers of the analytics API."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from django.conf import settings
from rest_framework import serializers

from analytics.selectors import BUCKETS, bucket_count
from analytics.windows import Filters, Window
from core.api import DurationField
from core.problems import RULE
from querylang import QueryError, validate_query

FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


class WindowQuerySerializer(serializers.Serializer):
    """A window: the last ``since`` (default 24h), or ``from`` to ``until`` (default now)."""

    since = DurationField(required=False, help_text="The last 15m, 24h, 7d... (default 24h).")
    locals()["from"] = serializers.DateTimeField(
        required=False, help_text="Start of the window (with until, instead of since)."
    )
    until = serializers.DateTimeField(required=False, help_text="End of the window; default now.")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        now = datetime.now(tz=UTC)
        start, until, since = attrs.get("from"), attrs.get("until"), attrs.get("since")
        if since is not None and start is not None:
            raise serializers.ValidationError({"since": "Give since or from, not both."}, code=RULE)
        until = until or now
        if start is None:
            start = until - (since or timedelta(hours=24))
        if start >= until:
            raise serializers.ValidationError(
                {"until": "The window must end after it starts."}, code=RULE
            )
        if until - start > timedelta(days=settings.ANALYTICS_MAX_WINDOW_DAYS):
            raise serializers.ValidationError(
                {"since": f"A window spans at most {settings.ANALYTICS_MAX_WINDOW_DAYS} days."},
                code=RULE,
            )
        attrs["window"] = Window(start, until)
        return attrs


class SummaryQuerySerializer(WindowQuerySerializer):
    field = serializers.RegexField(
        FIELD_NAME,
        required=False,
        default="amount",
        max_length=200,
        help_text="The numeric field of the data to sum and average (default amount).",
    )


class StreamFilterSerializer(serializers.Serializer):
    """What a time series or a stream keeps."""

    type = serializers.CharField(
        required=False,
        help_text="Event types, comma-separated; order.* names every type under order.",
    )
    source = serializers.CharField(required=False, max_length=1024)
    subject = serializers.CharField(required=False, max_length=1024)
    filter = serializers.CharField(
        required=False,
        help_text="A condition on the stored event in MongoDB's query language, as JSON: "
        '{"payload.amount": {"$gt": 100}}.',
    )

    def validate_filter(self, value: str) -> dict[str, Any]:
        try:
            query = json.loads(value)
        except ValueError as exc:
            raise serializers.ValidationError(f"Not JSON: {exc}.", code=RULE) from exc
        try:
            validate_query(query)
        except QueryError as exc:
            raise serializers.ValidationError(str(exc), code=RULE) from exc
        return query

    def validate_type(self, value: str) -> tuple[str, ...]:
        names = tuple(name.strip() for name in value.split(",") if name.strip())
        if not names:
            raise serializers.ValidationError("Name at least one event type.", code=RULE)
        return names

    def filters(self) -> Filters:
        data = self.validated_data
        return Filters(
            types=data.get("type", ()),
            source=data.get("source"),
            subject=data.get("subject"),
            query=data.get("filter") or {},
        )


class TimeseriesQuerySerializer(StreamFilterSerializer, WindowQuerySerializer):
    bucket = serializers.ChoiceField(list(BUCKETS), default="1h")

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        if bucket_count(attrs["window"], attrs["bucket"]) > settings.ANALYTICS_MAX_BUCKETS:
            raise serializers.ValidationError(
                {
                    "bucket": f"More than {settings.ANALYTICS_MAX_BUCKETS} buckets: "
                    "choose a larger bucket or a shorter window."
                },
                code=RULE,
            )
        return attrs


class LimitQuerySerializer(WindowQuerySerializer):
    limit = serializers.IntegerField(required=False, default=10, min_value=1, max_value=1000)


class UserActivityQuerySerializer(LimitQuerySerializer):
    subject = serializers.CharField(
        required=False, max_length=1024, help_text="One subject (user) instead of the top N."
    )


class FunnelQuerySerializer(WindowQuerySerializer):
    steps = serializers.CharField(help_text="Event types in order, comma-separated (2 to 20).")

    def validate_steps(self, value: str) -> list[str]:
        steps = [step.strip() for step in value.split(",") if step.strip()]
        if not 2 <= len(steps) <= 20:
            raise serializers.ValidationError(
                "Name 2 to 20 event types, comma-separated.", code=RULE
            )
        return steps


class WindowSerializer(serializers.Serializer):
    since = serializers.DateTimeField()
    until = serializers.DateTimeField()


class KeyCountSerializer(serializers.Serializer):
    key = serializers.CharField()
    count = serializers.IntegerField()


class DeliverySummarySerializer(serializers.Serializer):
    total = serializers.IntegerField()
    succeeded = serializers.IntegerField()
    dead = serializers.IntegerField()
    success_rate = serializers.FloatField(allow_null=True)
    latency_ms_p50 = serializers.FloatField(allow_null=True)
    latency_ms_p95 = serializers.FloatField(allow_null=True)


class SummarySerializer(serializers.Serializer):
    window = WindowSerializer()
    total = serializers.IntegerField()
    by_type = KeyCountSerializer(many=True)
    by_source = KeyCountSerializer(many=True)
    by_severity = KeyCountSerializer(
        many=True, help_text="Bands: info 1-3, warning 4-6, error 7-8, critical 9-10, none."
    )
    errors = serializers.IntegerField(help_text="Events of the error and critical bands.")
    error_share = serializers.FloatField()
    field = serializers.CharField()
    sum = serializers.FloatField()
    average = serializers.FloatField(allow_null=True)
    deliveries = DeliverySummarySerializer()


class PointSerializer(serializers.Serializer):
    start = serializers.DateTimeField()
    count = serializers.IntegerField()
    sum = serializers.FloatField(help_text="The sum of the data's amount.")


class TimeseriesSerializer(serializers.Serializer):
    window = WindowSerializer()
    bucket = serializers.ChoiceField(list(BUCKETS))
    points = PointSerializer(many=True)


class TopErrorSerializer(serializers.Serializer):
    type = serializers.CharField()
    source = serializers.CharField()
    code = serializers.CharField(allow_null=True)
    count = serializers.IntegerField()
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()


class TypeCountSerializer(serializers.Serializer):
    type = serializers.CharField()
    count = serializers.IntegerField()


class UserActivitySerializer(serializers.Serializer):
    subject = serializers.CharField()
    count = serializers.IntegerField()
    types = TypeCountSerializer(many=True)
    first_seen = serializers.DateTimeField()
    last_seen = serializers.DateTimeField()


class FunnelStepSerializer(serializers.Serializer):
    step = serializers.CharField()
    subjects = serializers.IntegerField()
    conversion = serializers.FloatField(
        allow_null=True, help_text="Share of the previous step's subjects (null for the first)."
    )


class FunnelSerializer(serializers.Serializer):
    window = WindowSerializer()
    steps = FunnelStepSerializer(many=True)


def checked_query(serializer_class: type[serializers.Serializer], arguments: dict[str, Any]):
    """A query from another door (GraphQL arguments, a gRPC request) checked as the REST API
    checks its parameters: the valid serializer, or ``ValidationError`` naming the fields.
    Empty arguments are absent; ``from_`` is ``from``; a filter may come parsed."""
    data = {}
    for name, value in arguments.items():
        if value is None or value == "":
            continue
        name = "from" if name == "from_" else name
        if name == "filter" and not isinstance(value, str):
            value = json.dumps(value)
        data[name] = value.isoformat() if hasattr(value, "isoformat") else value
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return serializer
