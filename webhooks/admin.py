"""Admin for deliveries (with their attempts inline, retry and replay actions) and attempts."""

from __future__ import annotations

from datetime import timedelta

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

import subscriptions.admin
from subscriptions.models import Subscription
from webhooks.models import Delivery, DeliveryAttempt
from webhooks.selectors import subscription_outcomes_since, success_rate
from webhooks.services.actions import (
    DeliveryNotRetryable,
    delivery_retry,
    subscription_resume,
    subscription_send_test,
)


class DeliveryAttemptInline(admin.TabularInline):
    model = DeliveryAttempt
    fields = [
        "number",
        "created_at",
        "response_status",
        "error_class",
        "duration_ms",
        "response_body",
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request, obj=None) -> bool:
        return False


@admin.register(Delivery)
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "event_type",
        "event_source",
        "event_id",
        "subscription",
        "rule",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "created_at",
    ]
    list_filter = ["status", "is_test", "event_type"]
    search_fields = [
        "event_id",
        "event_source",
        "event_type",
        "subscription__url",
        "subscription__name",
    ]
    list_select_related = ["subscription__subscriber", "rule"]
    autocomplete_fields = ["subscription"]
    raw_id_fields = ["rule"]
    readonly_fields = [
        "event_id",
        "event_source",
        "event_type",
        "subscription",
        "rule",
        "partition_key",
        "attempts",
        "last_status_code",
        "last_error",
        "is_test",
        "traceparent",
        "created_at",
        "updated_at",
        "delivered_at",
    ]
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [DeliveryAttemptInline]
    actions = ["retry_selected", "replay_dead"]

    def has_add_permission(self, request) -> bool:
        return False

    def _retry(self, request: HttpRequest, deliveries: QuerySet[Delivery]) -> tuple[int, int]:
        """Retry each delivery; returns (queued, skipped because not retryable)."""
        queued = skipped = 0
        for delivery in deliveries.order_by("id"):
            try:
                delivery_retry(delivery=delivery, actor=request.user)
            except DeliveryNotRetryable:
                skipped += 1
            else:
                queued += 1
        return queued, skipped

    @admin.action(description="Retry selected deliveries", permissions=["change"])
    def retry_selected(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        queued, skipped = self._retry(request, queryset)
        self.message_user(request, f"Queued {queued} deliveries for retry.", messages.SUCCESS)
        if skipped:
            self.message_user(
                request,
                f"Skipped {skipped} that cannot be retried (only dead, retrying, held or "
                "cancelled deliveries can).",
                messages.WARNING,
            )

    @admin.action(description="Replay selected dead deliveries", permissions=["change"])
    def replay_dead(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        dead = queryset.filter(status=Delivery.Status.DEAD)
        others = queryset.count() - dead.count()
        queued, skipped = self._retry(request, dead)
        self.message_user(request, f"Replayed {queued} dead deliveries.", messages.SUCCESS)
        if others + skipped:
            self.message_user(
                request, f"Skipped {others + skipped} that are not dead.", messages.WARNING
            )


@admin.register(DeliveryAttempt)
class DeliveryAttemptAdmin(admin.ModelAdmin):
    list_display = [
        "delivery",
        "number",
        "response_status",
        "error_class",
        "duration_ms",
        "created_at",
    ]
    list_filter = ["error_class", "response_status"]
    search_fields = ["delivery__event_id", "delivery__subscription__url", "response_body"]
    list_select_related = ["delivery"]
    readonly_fields = [f.name for f in DeliveryAttempt._meta.fields]
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


admin.site.unregister(Subscription)


@admin.register(Subscription)
class SubscriptionAdmin(subscriptions.admin.SubscriptionAdmin):
    """Subscriptions' admin with the actions that act on deliveries, which belong here."""

    actions = [
        "send_test",
        "pause",
        "resume",
        "resume_and_release",
        "disable",
        "enable",
        "rotate_secret",
    ]

    def get_list_display(self, request: HttpRequest) -> list[str]:
        shown = list(super().get_list_display(request))
        shown.insert(shown.index("state_column") + 1, "success_rate_24h")
        return shown

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscription]:
        since = timezone.now() - timedelta(hours=24)
        return super().get_queryset(request).annotate(**subscription_outcomes_since(since))

    @admin.display(description="success rate 24 h")
    def success_rate_24h(self, obj: Subscription) -> str:
        """Of its deliveries of the last 24 hours that ended, the share that succeeded (as
        analytics' delivery summary counts them)."""
        rate = success_rate(obj.recent_succeeded, obj.recent_dead)
        if rate is None:
            return "–"
        return f"{rate:.1%} of {obj.recent_succeeded + obj.recent_dead}"

    @admin.action(description="Resume selected subscriptions", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        resumed = held = 0
        for subscription in queryset:
            result = subscription_resume(
                subscription=subscription, release_held=False, actor=request.user
            )
            resumed += result.resumed
            held += result.held
        self.message_user(request, f"Resumed {resumed} subscription(s).", messages.SUCCESS)
        if held:
            self.message_user(
                request,
                f"{held} deliveries held while they were paused still wait: select the "
                'subscriptions and choose "Resume and release held deliveries" to send them.',
                messages.WARNING,
            )

    @admin.action(description="Resume and release held deliveries", permissions=["change"])
    def resume_and_release(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        resumed = released = 0
        for subscription in queryset:
            result = subscription_resume(
                subscription=subscription, release_held=True, actor=request.user
            )
            resumed += result.resumed
            released += result.released
        self.message_user(
            request,
            f"Resumed {resumed} subscription(s); released {released} held deliveries.",
            messages.SUCCESS,
        )

    @admin.action(description="Send test event", permissions=["change"])
    def send_test(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        for subscription in queryset.prefetch_related("secrets"):
            delivery = subscription_send_test(subscription=subscription, actor=request.user)
            if delivery.status == delivery.Status.SUCCEEDED:
                self.message_user(
                    request,
                    f"Test event to {subscription}: delivered (HTTP {delivery.last_status_code}).",
                    messages.SUCCESS,
                )
            else:
                self.message_user(
                    request,
                    f"Test event to {subscription} failed: {delivery.last_error}",
                    messages.ERROR,
                )
