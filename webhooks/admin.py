"""Admin for deliveries (with their attempts inline, retry and replay actions) and attempts."""

from __future__ import annotations

import re
from datetime import timedelta

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils import timezone

import subscriptions.admin
from accounts.admin import AuditedAdmin
from core.durations import parse_duration
from subscriptions.models import Subscription
from webhooks.models import Delivery, DeliveryAttempt, ErrorClass
from webhooks.selectors import subscription_outcomes_since, success_rate
from webhooks.services.actions import (
    DeliveryNotRetryable,
    deliveries_replay,
    delivery_retry,
    subscription_resume,
    subscription_send_test,
)

WEBHOOK_ID = re.compile(r"msg_([0-9]{1,18})")


class ErrorClassFilter(admin.SimpleListFilter):
    """Deliveries whose last attempt failed with this error class (an indexed look-up of
    that one attempt per delivery)."""

    title = "last error class"
    parameter_name = "error_class"

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        return list(ErrorClass.choices)

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        if self.value() not in ErrorClass.values:
            return None
        last = DeliveryAttempt.objects.filter(
            delivery=OuterRef("pk"), number=OuterRef("attempts"), error_class=self.value()
        )
        return queryset.filter(Exists(last))


class SubscriptionListFilter(admin.RelatedFieldListFilter):
    """The subscriptions to filter by, loaded with their subscribers (which name them) at once."""

    def field_choices(self, field, request: HttpRequest, model_admin) -> list[tuple[int, str]]:
        subscriptions = Subscription.objects.select_related("subscriber")
        return [(subscription.pk, str(subscription)) for subscription in subscriptions]


class ReplayForm(forms.Form):
    """Which dead deliveries to replay: those that died within ``since``, of one subscription
    or event type if chosen (``deliveries_replay``'s filters)."""

    since = forms.ChoiceField(
        choices=[
            ("1h", "last hour"),
            ("6h", "last 6 hours"),
            ("1d", "last day"),
            ("7d", "last 7 days"),
            ("30d", "last 30 days"),
        ],
        initial="1d",
        help_text="Dead within this time.",
    )
    subscription = forms.ModelChoiceField(
        Subscription.objects.select_related("subscriber"), required=False
    )
    event_type = forms.CharField(required=False, max_length=200)

    def clean_since(self) -> timedelta:
        return parse_duration(self.cleaned_data["since"])


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
class DeliveryAdmin(AuditedAdmin):
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
    list_filter = [
        "status",
        ErrorClassFilter,
        ("subscription", SubscriptionListFilter),
        "event_type",
        ("created_at", admin.DateFieldListFilter),
        "is_test",
    ]
    # exact matches only, each one indexed read: an event id, a webhook id (msg_<id>) or a
    # delivery id; a substring search (or admin's case-insensitive "=") would read every row
    # of a table of millions. get_search_results does the matching.
    search_fields = ["event_id"]
    search_help_text = "An event id, a webhook id (msg_…) or a delivery id."
    ordering = ["-id"]  # the primary key's index: newest first without sorting the table
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
    show_full_result_count = False
    inlines = [DeliveryAttemptInline]
    actions = ["retry_selected", "replay_dead"]

    def has_add_permission(self, request) -> bool:
        return False

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Delivery], search_term: str
    ) -> tuple[QuerySet[Delivery], bool]:
        term = search_term.strip()
        webhook_id = WEBHOOK_ID.fullmatch(term)
        if webhook_id:
            return queryset.filter(pk=int(webhook_id.group(1))), False
        if not term:
            return queryset, False
        found = queryset.filter(event_id=term)
        if term.isdigit() and len(term) < 19:  # a delivery's own id, or an event's
            found = found | queryset.filter(pk=int(term))
        return found, False

    def get_urls(self) -> list:
        dead_letters = self.admin_site.admin_view(self.dead_letters_view)
        return [
            path("dead-letters/", dead_letters, name="webhooks_delivery_dead_letters"),
            *super().get_urls(),
        ]

    def dead_letters_view(self, request: HttpRequest) -> HttpResponse:
        """Replay dead deliveries by filter: the count first (a dry run), then the replay."""
        if not self.has_change_permission(request):
            raise PermissionDenied
        data = request.POST if request.method == "POST" else request.GET
        form = ReplayForm(data or None)
        count = None
        if form.is_valid():
            chosen = form.cleaned_data
            replay = {
                "since": chosen["since"],
                "subscription_id": chosen["subscription"].pk if chosen["subscription"] else None,
                "event_type": chosen["event_type"] or None,
            }
            if request.method == "POST" and "replay" in request.POST:
                replayed = deliveries_replay(**replay, actor=request.user)
                self.message_user(
                    request, f"Replayed {replayed} dead deliveries.", messages.SUCCESS
                )
                return redirect(reverse("admin:webhooks_delivery_dead_letters"))
            count = deliveries_replay(**replay, dry_run=True)
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Dead letters: replay by filter",
            "form": form,
            "count": count,
        }
        return TemplateResponse(request, "admin/webhooks/delivery/dead_letters.html", context)

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

    def _resume_each(
        self, request: HttpRequest, queryset: QuerySet[Subscription], *, release_held: bool
    ) -> tuple[int, int, int]:
        """Resume each subscription; (resumed, still held, released) in all."""
        resumed = held = released = 0
        for subscription in queryset:
            result = subscription_resume(
                subscription=subscription, release_held=release_held, actor=request.user
            )
            resumed += result.resumed
            held += result.held
            released += result.released
        return resumed, held, released

    @admin.action(description="Resume selected subscriptions", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        resumed, held, _ = self._resume_each(request, queryset, release_held=False)
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
        resumed, _, released = self._resume_each(request, queryset, release_held=True)
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
