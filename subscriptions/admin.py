"""Admin for subscribers, subscriptions (health, test events, state and secret actions) and
(read-only) signing secrets."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import Count, F, FloatField, QuerySet
from django.db.models.functions import Cast, NullIf
from django.http import HttpRequest

from accounts.admin import AuditedAdmin
from subscriptions.models import SigningSecret, Subscriber, Subscription
from subscriptions.selectors import DISABLED, FAILING, HEALTHY, PAUSED
from subscriptions.services import (
    subscription_add_secret,
    subscription_rotate_secret,
    subscription_set_state,
)

SECRET_NOTICE = "(copy it now: it will not be shown again)"


class SubscriptionInline(admin.TabularInline):
    model = Subscription
    fields = ["name", "url", "event_types", "state"]
    readonly_fields = fields
    extra = 0
    show_change_link = True
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


@admin.register(Subscriber)
class SubscriberAdmin(AuditedAdmin):
    list_display = ["name", "contact_email", "active", "subscription_count", "created_at"]
    list_filter = ["active"]
    search_fields = ["name", "contact_email", "description"]
    readonly_fields = ["created_at", "updated_at"]
    inlines = [SubscriptionInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscriber]:
        return super().get_queryset(request).annotate(_subscriptions=Count("subscriptions"))

    @admin.display(description="subscriptions", ordering="_subscriptions")
    def subscription_count(self, obj: Subscriber) -> int:
        return obj._subscriptions


class SigningSecretInline(admin.TabularInline):
    model = SigningSecret
    fields = ["hint", "created_at", "expires_at"]
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class HealthFilter(admin.SimpleListFilter):
    """The endpoints an operator looks for: failing now, paused, disabled, or healthy."""

    title = "health"
    parameter_name = "health"

    CONDITIONS = {"failing": FAILING, "paused": PAUSED, "disabled": DISABLED, "healthy": HEALTHY}

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        return [
            ("failing", "Failing (last attempts failed)"),
            ("paused", "Paused"),
            ("disabled", "Disabled"),
            ("healthy", "Healthy"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet | None:
        condition = self.CONDITIONS.get(self.value() or "")
        return None if condition is None else queryset.filter(condition)


@admin.register(Subscription)
class SubscriptionAdmin(AuditedAdmin):
    list_display = [
        "__str__",
        "subscriber",
        "url",
        "state_column",
        "success_rate_column",
        "last_success_at",
        "last_error_column",
        "consecutive_failures",
        "output_format",
        "updated_at",
    ]
    list_filter = [HealthFilter, "state", "output_format", "ordered", "subscriber"]
    search_fields = ["name", "url", "subscriber__name", "state_reason", "last_error"]
    list_select_related = ["subscriber"]
    autocomplete_fields = ["subscriber"]
    readonly_fields = [
        "state_reason",
        "state_changed_at",
        "consecutive_failures",
        "failing_since",
        "last_error",
        "last_error_at",
        "last_success_at",
        "success_rate_column",
        "created_at",
        "updated_at",
    ]
    inlines = [SigningSecretInline]
    # webhooks.admin adds the actions that act on deliveries (test event, release held)
    actions = ["pause", "resume", "disable", "enable", "rotate_secret"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Subscription]:
        # attempts answered 2xx over attempts made; NULL before the first attempt
        return (
            super()
            .get_queryset(request)
            .annotate(
                _success_rate=Cast("attempts_succeeded", FloatField())
                / NullIf(Cast(F("attempts_total"), FloatField()), 0.0)
            )
        )

    @admin.display(description="success rate (all attempts)", ordering="_success_rate")
    def success_rate_column(self, obj: Subscription) -> str:
        rate = obj.success_rate
        return "–" if rate is None else f"{rate:.1%}"

    @admin.display(description="state", ordering="state")
    def state_column(self, obj: Subscription) -> str:
        state = obj.get_state_display()
        return f"{state}: {obj.state_reason}" if obj.state_reason else state

    @admin.display(description="last error", ordering="last_error_at")
    def last_error_column(self, obj: Subscription) -> str:
        if not obj.last_error:
            return "–"
        error = obj.last_error if len(obj.last_error) <= 80 else obj.last_error[:79] + "…"
        return f"{obj.last_error_at:%Y-%m-%d %H:%M} {error}" if obj.last_error_at else error

    def save_model(self, request: HttpRequest, obj: Subscription, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if not change:
            secret = subscription_add_secret(subscription=obj)
            self.message_user(
                request, f"Signing secret for {obj}: {secret} {SECRET_NOTICE}.", messages.WARNING
            )

    @admin.action(description="Pause selected subscriptions", permissions=["change"])
    def pause(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        self._set_state(request, queryset, Subscription.State.PAUSED, "paused")

    @admin.action(description="Resume selected subscriptions", permissions=["change"])
    def resume(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        self._set_state(request, queryset, Subscription.State.ACTIVE, "resumed")

    def _set_state(
        self, request: HttpRequest, queryset: QuerySet[Subscription], state: str, verb: str
    ) -> None:
        count = 0
        for subscription in queryset.exclude(state=state):
            subscription_set_state(
                subscription=subscription,
                state=state,
                reason="" if state == Subscription.State.ACTIVE else f"{verb} by {request.user}",
                actor=request.user,
            )
            count += 1
        self.message_user(
            request, f"{verb.capitalize()} {count} subscription(s).", messages.SUCCESS
        )

    @admin.action(description="Disable selected subscriptions", permissions=["change"])
    def disable(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        self._set_state(request, queryset, Subscription.State.DISABLED, "disabled")

    @admin.action(description="Enable selected disabled subscriptions", permissions=["change"])
    def enable(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        disabled = queryset.filter(state=Subscription.State.DISABLED)
        self._set_state(request, disabled, Subscription.State.ACTIVE, "enabled")

    @admin.action(description="Rotate signing secret", permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[Subscription]) -> None:
        for subscription in queryset:
            secret = subscription_rotate_secret(subscription=subscription, actor=request.user)
            self.message_user(
                request,
                f"New secret for {subscription}: {secret} {SECRET_NOTICE}.",
                messages.WARNING,
            )


@admin.register(SigningSecret)
class SigningSecretAdmin(AuditedAdmin):
    """Secrets are listed by hint only; they are created and rotated from the subscription."""

    list_display = ["hint", "subscription", "created_at", "expires_at"]
    list_filter = [("expires_at", admin.EmptyFieldListFilter)]
    search_fields = ["subscription__name", "subscription__url", "subscription__subscriber__name"]
    list_select_related = ["subscription__subscriber"]
    fields = ["subscription", "hint", "created_at", "expires_at"]
    readonly_fields = ["subscription", "hint", "created_at"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False
