"""Deliveries of events to subscriptions, and every attempt made to send one."""

from __future__ import annotations

from django.contrib.postgres.indexes import BrinIndex
from django.db import models

from rules.models import Rule
from subscriptions.models import Subscription


class DeliveryStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    IN_FLIGHT = "in_flight", "In flight"
    SUCCEEDED = "succeeded", "Succeeded"
    RETRYING = "retrying", "Retrying"
    DEAD = "dead", "Dead"
    CANCELLED = "cancelled", "Cancelled"
    HELD = "held", "Held"


# a delivery that has yet to end: ordered subscriptions wait for their earlier ones
UNFINISHED_STATUSES = [
    DeliveryStatus.PENDING,
    DeliveryStatus.RETRYING,
    DeliveryStatus.IN_FLIGHT,
    DeliveryStatus.HELD,
]


def message_id(delivery_id: int) -> str:
    """The ``webhook-id`` of a delivery: the same for every attempt, retry and replay."""
    return f"msg_{delivery_id}"


class Delivery(models.Model):
    """One event owed to one subscription (through one rule, or directly).

    An event is its ``source`` and ``id`` together (CloudEvents' identity): two producers may
    use the same id. Unique per (event, subscription, rule), so a replayed pipeline batch adds
    nothing.
    """

    Status = DeliveryStatus

    # as long as the envelope allows (events.envelope.MAX_STRING)
    event_id = models.CharField(max_length=1024)
    event_source = models.CharField(max_length=1024)
    event_type = models.CharField(max_length=200)
    subscription = models.ForeignKey(
        Subscription, on_delete=models.PROTECT, related_name="deliveries"
    )
    rule = models.ForeignKey(
        Rule, null=True, blank=True, on_delete=models.PROTECT, related_name="deliveries"
    )
    partition_key = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    # attempts made before the last operator retry or replay: the retry schedule starts over
    attempts_before_replay = models.PositiveIntegerField(default=0)
    # pending: when the sweeper queues it (again) if no task took it; retrying: when it is due;
    # in flight: when the claim lapses (the worker died) and the sweeper takes it back
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True)
    is_test = models.BooleanField(default=False)
    # the W3C trace context of the event's consume span (tracing on): each attempt's span is
    # its child, and the receiver gets the attempt's as its traceparent header
    traceparent = models.CharField(max_length=55, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name_plural = "deliveries"
        constraints = [
            # its index also serves every delivery of one event, by id alone or with source
            models.UniqueConstraint(
                fields=["event_id", "event_source", "subscription", "rule"],
                nulls_distinct=False,
                name="delivery_unique_event_target",
            ),
            models.CheckConstraint(
                condition=models.Q(status__in=DeliveryStatus.values),
                name="delivery_status_valid",
            ),
            models.CheckConstraint(
                condition=~models.Q(status=DeliveryStatus.SUCCEEDED)
                | models.Q(delivered_at__isnull=False),
                name="delivery_succeeded_has_time",
            ),
        ]
        indexes = [
            # the retry sweeper: due deliveries by status and next attempt time
            models.Index(fields=["status", "next_attempt_at"], name="delivery_status_next"),
            # a subscription's deliveries, newest first (admin, API, success rate)
            models.Index(fields=["subscription", "-created_at"], name="delivery_sub_time"),
            # the DLQ's recent past: dead deliveries by when they died (list_dlq, replay)
            models.Index(
                fields=["updated_at"],
                name="delivery_dead_time",
                condition=models.Q(status=DeliveryStatus.DEAD),
            ),
            # deliveries made in a window of time (analytics' delivery summary, the admin's
            # dashboard and date drill-down): rows arrive in time order, so a BRIN index
            # answers ranges for a fraction of a B-tree's size and write cost
            BrinIndex(fields=["created_at"], name="delivery_created_brin"),
            # ordered subscriptions: the earlier unfinished deliveries of a partition key
            models.Index(
                fields=["subscription", "partition_key", "id"],
                name="delivery_unfinished_key",
                condition=models.Q(status__in=UNFINISHED_STATUSES),
            ),
        ]

    def __str__(self) -> str:
        return (
            f"{self.event_type} {self.event_source} {self.event_id} → {self.subscription_id} "
            f"({self.status})"
        )

    @property
    def message_id(self) -> str:
        return message_id(self.pk)

    @property
    def is_final(self) -> bool:
        return self.status in {self.Status.SUCCEEDED, self.Status.DEAD, self.Status.CANCELLED}


class ErrorClass(models.TextChoices):
    """Why an attempt failed: the sender names it, the retry policy reads it, attempts keep it."""

    TIMEOUT = "timeout", "Timeout"
    CONNECTION = "connection", "Connection"
    DNS = "dns", "DNS"
    TLS = "tls", "TLS"
    HTTP_3XX = "http_3xx", "HTTP 3xx (redirects are not followed)"
    HTTP_4XX = "http_4xx", "HTTP 4xx"
    HTTP_5XX = "http_5xx", "HTTP 5xx"
    REFUSED_URL = "refused_url", "Refused URL"


class DeliveryAttempt(models.Model):
    """One HTTP request made for a delivery, with what came back."""

    ErrorClass = ErrorClass

    delivery = models.ForeignKey(Delivery, on_delete=models.CASCADE, related_name="attempts_made")
    number = models.PositiveIntegerField()
    request_headers = models.JSONField(default=dict, blank=True)
    response_status = models.PositiveSmallIntegerField(null=True, blank=True)
    response_body = models.TextField(blank=True, help_text="The first bytes of the response.")
    duration_ms = models.PositiveIntegerField(default=0)
    error_class = models.CharField(max_length=12, choices=ErrorClass.choices, blank=True)
    remote_address = models.GenericIPAddressField(
        null=True,
        blank=True,
        unpack_ipv4=True,
        help_text="The address the request went to (null when none answered).",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["delivery_id", "number"]
        constraints = [
            models.UniqueConstraint(fields=["delivery", "number"], name="attempt_unique_number"),
            models.CheckConstraint(
                condition=models.Q(number__gte=1), name="attempt_number_positive"
            ),
        ]

    def __str__(self) -> str:
        outcome = self.response_status or self.error_class or "?"
        return f"attempt {self.number} of delivery {self.delivery_id}: {outcome}"

    @property
    def succeeded(self) -> bool:
        return self.response_status is not None and 200 <= self.response_status < 300
