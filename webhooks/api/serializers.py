"""Serializers of the deliveries API: deliveries with their attempts, and the replay request."""

from __future__ import annotations

from rest_framework import serializers

from core.api import DurationField, Serializer
from subscriptions.models import Subscription
from webhooks.models import Delivery, DeliveryAttempt
from webhooks.services.queueing import RETRYABLE


class DeliveryAttemptSerializer(serializers.ModelSerializer):
    error_class = serializers.ChoiceField(
        choices=DeliveryAttempt.ErrorClass.choices,
        allow_blank=True,
        read_only=True,
        help_text='Why it failed; "" for an attempt answered 2xx.',
    )

    class Meta:
        model = DeliveryAttempt
        fields = [
            "number",
            "created_at",
            "response_status",
            "error_class",
            "duration_ms",
            "response_body",
            "request_headers",
            "remote_address",
        ]
        read_only_fields = fields


DELIVERY_FIELDS = [
    "id",
    "message_id",
    "event_id",
    "event_source",
    "event_type",
    "subscription",
    "rule",
    "partition_key",
    "status",
    "attempts",
    "next_attempt_at",
    "last_status_code",
    "last_error",
    "is_test",
    "created_at",
    "updated_at",
    "delivered_at",
]


class DeliverySerializer(serializers.ModelSerializer):
    message_id = serializers.CharField(
        read_only=True, help_text="The webhook-id: the same for every attempt and replay."
    )

    class Meta:
        model = Delivery
        fields = DELIVERY_FIELDS
        read_only_fields = fields


class DeliveryDetailSerializer(DeliverySerializer):
    """A delivery with every HTTP request made for it, oldest first, and the trace context of
    its event (empty unless tracing was on): the trace to look up in the tracing backend."""

    attempts_made = DeliveryAttemptSerializer(many=True, read_only=True)

    class Meta(DeliverySerializer.Meta):
        fields = [*DELIVERY_FIELDS, "traceparent", "attempts_made"]
        read_only_fields = fields


class ReplayRequestSerializer(Serializer):
    since = DurationField(help_text="How far back: deliveries that reached the status since then.")
    status = serializers.ChoiceField(
        choices=sorted(s.value for s in RETRYABLE),
        default=Delivery.Status.DEAD,
        help_text="Usually dead.",
    )
    subscription = serializers.PrimaryKeyRelatedField(
        queryset=Subscription.objects.all(), required=False, allow_null=True
    )
    event_type = serializers.CharField(required=False, allow_blank=True, max_length=200)
    dry_run = serializers.BooleanField(default=False, help_text="Only count them.")


class ReplayResultSerializer(serializers.Serializer):
    count = serializers.IntegerField(help_text="Deliveries queued (or that would be, dry run).")
    dry_run = serializers.BooleanField()
