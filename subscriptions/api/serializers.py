"""Serializers of the subscriptions API.

Signing secrets are never read back: a subscription shows their hints, and the secret itself
appears once, in the answer that created it (``secret``). The subscription's extra headers often
carry the endpoint's credentials, so they are write-only too (``header_names`` shows the names).
"""

from __future__ import annotations

from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.validators import RegexValidator
from rest_framework import serializers

from core.api import (
    DurationField,
    ModelSerializer,
    OptionalEmailField,
    Serializer,
    StringField,
)
from core.problems import field_errors
from subscriptions.models import SigningSecret, Subscriber, Subscription
from subscriptions.services import SubscriptionInvalid


def subscription_invalid(exc: DjangoValidationError) -> SubscriptionInvalid:
    """The model's validation errors as the 422 problem ``subscription_create`` raises."""
    return SubscriptionInvalid(
        "The subscription is not valid.", extra={"errors": field_errors(exc)}
    )


class SubscriberSerializer(ModelSerializer):
    contact_email = OptionalEmailField(max_length=254, help_text="null: none given.")

    class Meta:
        model = Subscriber
        fields = [
            "id",
            "name",
            "contact_email",
            "description",
            "active",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]


class SecretHintSerializer(serializers.ModelSerializer):
    hint = serializers.CharField(read_only=True, help_text="The first characters of the secret.")

    class Meta:
        model = SigningSecret
        fields = ["hint", "created_at", "expires_at"]
        read_only_fields = fields


# Written by the delivery workers and the state actions, never by a PUT or PATCH.
HEALTH_FIELDS = [
    "state",
    "state_reason",
    "state_changed_at",
    "consecutive_failures",
    "failing_since",
    "last_error",
    "last_error_at",
    "last_success_at",
    "success_rate",
]


class SubscriptionSerializer(ModelSerializer):
    # A CharField, not a URLField: whether it is a URL that may be called is the model's
    # (Django's URL validator and the SSRF and egress guards), answered 422 with the others.
    url = serializers.CharField(
        max_length=2048, validators=[RegexValidator(r"^https?://", "Use an http or https URL.")]
    )
    filter = serializers.DictField(
        required=False,
        allow_null=True,
        help_text="Optional condition in MongoDB's query language (null: every event).",
    )
    headers = serializers.DictField(
        child=StringField(allow_blank=True),
        required=False,
        write_only=True,
        help_text="Extra HTTP headers to send (write-only: they may be credentials).",
    )
    secret_hints = SecretHintSerializer(
        source="secrets", many=True, read_only=True, help_text="The secrets that sign now."
    )
    success_rate = serializers.FloatField(
        read_only=True, allow_null=True, help_text="Share of attempts answered 2xx (0 to 1)."
    )
    header_names = serializers.SerializerMethodField()

    class Meta:
        model = Subscription
        fields = [
            "id",
            "subscriber",
            "name",
            "url",
            "event_types",
            "filter",
            "retry_schedule",
            "timeout_seconds",
            "rate_limit_per_second",
            "headers",
            "header_names",
            "output_format",
            "ordered",
            *HEALTH_FIELDS,
            "secret_hints",
            "created_at",
            "updated_at",
        ]
        read_only_fields = [*HEALTH_FIELDS, "created_at", "updated_at"]
        extra_kwargs = {"event_types": {"allow_empty": False, "min_length": 1}}

    def get_header_names(self, subscription: Subscription) -> list[str]:
        return sorted(subscription.headers or {})

    def update(self, instance: Subscription, validated_data: dict) -> Subscription:
        """Change the subscription once the model accepts it (the SSRF guard included)."""
        for name, value in validated_data.items():
            setattr(instance, name, value)
        try:
            instance.full_clean()
        except DjangoValidationError as exc:
            raise subscription_invalid(exc) from exc
        instance.save()
        return instance


class SubscriptionCreatedSerializer(SubscriptionSerializer):
    secret = serializers.CharField(
        read_only=True, help_text="The signing secret: shown in this answer only, never again."
    )

    class Meta(SubscriptionSerializer.Meta):
        fields = [*SubscriptionSerializer.Meta.fields, "secret"]


class StateChangeSerializer(Serializer):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class ResumeRequestSerializer(Serializer):
    release_held = serializers.BooleanField(
        default=False, help_text="Also queue the deliveries held while it was not active."
    )


class ResumeResultSerializer(serializers.Serializer):
    subscription = SubscriptionSerializer()
    released = serializers.IntegerField(help_text="Held deliveries queued again.")
    held = serializers.IntegerField(help_text="Deliveries still held.")


class RotateSecretRequestSerializer(Serializer):
    overlap = DurationField(
        required=False,
        allow_zero=True,
        help_text="How long the current secrets stay valid (default from settings; 0 ends "
        "them now).",
    )


class RotateSecretResultSerializer(serializers.Serializer):
    secret = serializers.CharField(help_text="The new secret: shown in this answer only.")
    secret_hints = SecretHintSerializer(many=True)
