"""Subscribers, their webhook subscriptions and the subscriptions' signing secrets."""

from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import ValidationError
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils import timezone

from core.encryption import EncryptedJSONField, EncryptedTextField
from core.ssrf import UnsafeURL, check_url
from querylang import QueryError, validate_query
from subscriptions.patterns import is_valid_pattern, pattern_matches


def default_retry_schedule() -> list[int]:
    return list(settings.WEBHOOK_DEFAULT_RETRY_SCHEDULE)


def default_timeout() -> int:
    return settings.WEBHOOK_DEFAULT_TIMEOUT


class Subscriber(models.Model):
    """An application that receives events through one or more subscriptions."""

    name = models.CharField(max_length=100, unique=True)
    contact_email = models.EmailField(blank=True)
    description = models.TextField(blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Subscription(models.Model):
    """A webhook endpoint of a subscriber, the events it wants and how they are sent."""

    class State(models.TextChoices):
        ACTIVE = "active", "Active"
        PAUSED = "paused", "Paused"
        DISABLED = "disabled", "Disabled"

    class OutputFormat(models.TextChoices):
        STANDARD_WEBHOOKS = "standard-webhooks", "Standard Webhooks"
        CLOUDEVENTS = "cloudevents", "CloudEvents (binary mode)"

    subscriber = models.ForeignKey(
        Subscriber, on_delete=models.CASCADE, related_name="subscriptions"
    )
    name = models.CharField(max_length=100, blank=True)
    url = models.URLField(max_length=2048)
    event_types = ArrayField(
        models.CharField(max_length=200),
        help_text="Exact names (payment.failed), wildcards (order.*) or * for every type.",
    )
    filter = models.JSONField(
        null=True, blank=True, help_text="Optional condition in MongoDB's query language."
    )
    state = models.CharField(max_length=10, choices=State.choices, default=State.ACTIVE)
    state_reason = models.CharField(max_length=500, blank=True)
    state_changed_at = models.DateTimeField(null=True, blank=True)
    retry_schedule = ArrayField(
        models.PositiveIntegerField(),
        default=default_retry_schedule,
        blank=True,
        help_text="Seconds to wait before each retry; empty means no retry.",
    )
    timeout_seconds = models.PositiveSmallIntegerField(
        default=default_timeout, validators=[MinValueValidator(1), MaxValueValidator(120)]
    )
    rate_limit_per_second = models.PositiveIntegerField(
        null=True, blank=True, validators=[MinValueValidator(1)], help_text="Empty: no limit."
    )
    # encrypted at rest: header values are often the endpoint's credentials
    headers = EncryptedJSONField(default=dict, blank=True, help_text="Extra HTTP headers to send.")
    output_format = models.CharField(
        max_length=20, choices=OutputFormat.choices, default=OutputFormat.STANDARD_WEBHOOKS
    )
    ordered = models.BooleanField(
        default=False,
        help_text="Deliver events with the same partition key one at a time, in order.",
    )
    # Endpoint health, written by the delivery workers with queryset updates (which leave
    # updated_at alone: it is the routing table's change stamp).
    consecutive_failures = models.PositiveIntegerField(default=0, editable=False)
    failing_since = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    last_error_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_success_at = models.DateTimeField(null=True, blank=True, editable=False)
    attempts_total = models.PositiveBigIntegerField(default=0, editable=False)
    attempts_succeeded = models.PositiveBigIntegerField(default=0, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["subscriber__name", "id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(state__in=["active", "paused", "disabled"]),
                name="subscription_state_valid",
            ),
            models.CheckConstraint(
                condition=models.Q(timeout_seconds__gte=1, timeout_seconds__lte=120),
                name="subscription_timeout_range",
            ),
            models.CheckConstraint(
                condition=models.Q(rate_limit_per_second__isnull=True)
                | models.Q(rate_limit_per_second__gte=1),
                name="subscription_rate_limit_positive",
            ),
            models.CheckConstraint(
                condition=~models.Q(event_types=[]), name="subscription_has_event_types"
            ),
        ]
        indexes = [
            # building the routing table: every active subscription
            models.Index(fields=["state"], name="subscription_state"),
        ]

    def __str__(self) -> str:
        return self.name or f"{self.subscriber} → {self.url}"

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        if self.url:
            try:
                check_url(self.url)
            except UnsafeURL as exc:
                errors["url"] = [f"This URL is refused: {exc}."]
        bad = [p for p in self.event_types or [] if not is_valid_pattern(p)]
        if bad:
            errors["event_types"] = [
                f"{p!r} is not a type name, a wildcard such as order.* or *." for p in bad
            ]
        if self.filter is not None:
            try:
                validate_query(self.filter)
            except QueryError as exc:
                errors["filter"] = [str(exc)]
        if not isinstance(self.headers, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in (self.headers or {}).items()
        ):
            errors["headers"] = ["Headers must be an object of string names to string values."]
        if errors:
            raise ValidationError(errors)

    def wants(self, event_type: str) -> bool:
        """Whether one of the subscription's patterns matches ``event_type``."""
        return any(pattern_matches(p, event_type) for p in self.event_types)

    @property
    def success_rate(self) -> float | None:
        """Share of attempts that got a 2xx, or None before the first attempt."""
        if not self.attempts_total:
            return None
        return self.attempts_succeeded / self.attempts_total

    def valid_secrets(self, at: datetime | None = None) -> list[str]:
        """The secrets that sign now, newest first (prefetched ``secrets`` are used as is)."""
        at = at or timezone.now()
        return [s.secret for s in self.secrets.all() if s.is_valid(at)]

    @property
    def is_active(self) -> bool:
        return self.state == self.State.ACTIVE

    def _set_state(self, state: str, reason: str) -> None:
        self.state = state
        self.state_reason = reason
        self.state_changed_at = timezone.now()
        self.save(update_fields=["state", "state_reason", "state_changed_at", "updated_at"])

    def pause(self, reason: str = "") -> None:
        self._set_state(self.State.PAUSED, reason)

    def resume(self) -> None:
        self._set_state(self.State.ACTIVE, "")

    def disable(self, reason: str) -> None:
        self._set_state(self.State.DISABLED, reason)


class SigningSecret(models.Model):
    """A ``whsec_`` secret that signs deliveries. Several may be valid at once while rotating.

    The secret must be kept (HMAC needs it) but it is shown only once, when it is created;
    admin and the API show its hint, never the secret.
    """

    subscription = models.ForeignKey(Subscription, on_delete=models.CASCADE, related_name="secrets")
    secret = EncryptedTextField(editable=False)  # encrypted at rest (core.encryption)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["subscription_id", "-created_at", "-id"]
        indexes = [
            # the valid secrets of a subscription at send time
            models.Index(fields=["subscription", "expires_at"], name="secret_sub_expiry"),
        ]

    def __str__(self) -> str:
        return f"{self.hint} for {self.subscription_id}"

    @property
    def hint(self) -> str:
        return f"{self.secret[:10]}…" if self.secret else ""

    def is_valid(self, at: datetime | None = None) -> bool:
        return self.expires_at is None or self.expires_at > (at or timezone.now())
