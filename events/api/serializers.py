"""Serializers of the events API: query parameters and the documented request/response shapes."""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from core.api import ModelSerializer
from core.fields import QueryIntegerField
from core.pagination import DEFAULT_LIMIT, MAX_LIMIT
from core.problems import Unprocessable, field_errors
from events.models import EventType
from events.services import ANSWERS


class EventInSerializer(serializers.Serializer):
    """One event, structured CloudEvents or the flat form (documentation of the body)."""

    specversion = serializers.CharField(required=False, help_text='"1.0" for CloudEvents.')
    id = serializers.CharField(required=False, help_text="Unique per source; generated if absent.")
    source = serializers.CharField(required=False)
    type = serializers.CharField(required=False, help_text="CloudEvents: the event type.")
    event_type = serializers.CharField(required=False, help_text="Flat form: the event type.")
    time = serializers.DateTimeField(required=False)
    timestamp = serializers.DateTimeField(required=False, help_text="Flat form: the time.")
    subject = serializers.CharField(required=False)
    user_id = serializers.CharField(required=False, help_text="Flat form: the subject.")
    partitionkey = serializers.CharField(required=False)
    severity = serializers.IntegerField(required=False, min_value=1, max_value=10)
    amount = serializers.FloatField(required=False, help_text="Flat form: joins the data.")
    data = serializers.JSONField(required=False)
    payload = serializers.JSONField(required=False, help_text="Flat form: the data.")
    metadata = serializers.DictField(required=False)
    trace_id = serializers.CharField(required=False)
    session_id = serializers.CharField(required=False)


class PublishResultSerializer(serializers.Serializer):
    id = serializers.CharField(
        allow_null=True, help_text="null for a batch item that is not an event object."
    )
    status = serializers.ChoiceField([answer.value for answer in ANSWERS])
    errors = serializers.ListField(child=serializers.DictField(), required=False)


class BatchResultSerializer(serializers.Serializer):
    accepted = serializers.IntegerField()
    duplicates = serializers.IntegerField()
    invalid = serializers.IntegerField()
    failed = serializers.IntegerField()
    results = PublishResultSerializer(many=True)


class EventOutSerializer(serializers.Serializer):
    id = serializers.CharField()
    type = serializers.CharField()
    source = serializers.CharField()
    subject = serializers.CharField(allow_null=True)
    time = serializers.DateTimeField()
    severity = serializers.IntegerField(allow_null=True)
    data = serializers.JSONField()
    metadata = serializers.DictField()
    traceid = serializers.CharField(allow_null=True)
    sessionid = serializers.CharField(allow_null=True)
    partitionkey = serializers.CharField(allow_null=True)
    received_at = serializers.DateTimeField()


class EventPageSerializer(serializers.Serializer):
    """A page of events, in the shape of every list (``core.pagination``)."""

    results = EventOutSerializer(many=True)
    next = serializers.CharField(
        allow_null=True, help_text="Cursor of the next page (`?cursor=`); null on the last page."
    )


class EventQuerySerializer(serializers.Serializer):
    type = serializers.CharField(required=False)
    source = serializers.CharField(required=False)
    subject = serializers.CharField(required=False)
    user_id = serializers.CharField(required=False, help_text="Same as subject.")
    severity_min = QueryIntegerField(required=False, min_value=1, max_value=10)
    severity_max = QueryIntegerField(required=False, min_value=1, max_value=10)
    since = serializers.DateTimeField(required=False)
    until = serializers.DateTimeField(required=False)
    cursor = serializers.CharField(required=False, help_text="The `next` of the previous page.")
    limit = QueryIntegerField(
        required=False, min_value=1, max_value=MAX_LIMIT, default=DEFAULT_LIMIT
    )


class SearchQuerySerializer(serializers.Serializer):
    q = serializers.CharField(min_length=1, max_length=200)
    cursor = serializers.CharField(required=False, help_text="The `next` of the previous page.")
    limit = QueryIntegerField(required=False, min_value=1, max_value=200, default=50)


class EventTypeSerializer(ModelSerializer):
    schema = serializers.DictField(
        required=False, help_text="JSON Schema (2020-12) the event's data must satisfy."
    )

    class Meta:
        model = EventType
        fields = [
            "id",
            "name",
            "description",
            "schema",
            "schema_version",
            "enabled",
            "retention_days",
            "example",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["schema_version", "created_at", "updated_at"]

    def validate(self, attrs):
        instance = EventType(**{**self._current(), **attrs})
        try:
            instance.clean()
        except DjangoValidationError as exc:
            raise Unprocessable(
                "The event type is not valid.", extra={"errors": field_errors(exc)}
            ) from exc
        return attrs

    def _current(self) -> dict:
        if self.instance is None:
            return {}
        return {f: getattr(self.instance, f) for f in ("name", "schema", "example")}
