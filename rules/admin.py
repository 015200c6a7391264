"""Admin for rules: conditions validated with the fault's path (``Rule.clean``), the backtest
count and the latest matches on the change page, and the matches themselves."""

from __future__ import annotations

from django.contrib import admin, messages
from django.urls import reverse
from django.utils.html import format_html, format_html_join

from accounts.admin import AuditedAdmin
from rules.models import Rule, RuleMatch


@admin.register(Rule)
class RuleAdmin(AuditedAdmin):
    list_display = [
        "name",
        "enabled",
        "priority",
        "threshold_count",
        "threshold_window_seconds",
        "cooldown_seconds",
        "updated_at",
    ]
    list_filter = ["enabled"]
    list_editable = ["enabled", "priority"]
    search_fields = ["name", "description"]
    readonly_fields = ["backtest_count", "latest_matches", "created_at", "updated_at"]
    actions = ["backtest"]
    LATEST_MATCHES = 20

    @admin.display(description="backtest, last 7 days")
    def backtest_count(self, rule: Rule) -> str:
        from rules.services import rule_backtest

        if rule.pk is None:
            return "Shown once the rule is saved."
        try:
            result = rule_backtest(conditions=rule.conditions, days=7)
        except Exception as exc:  # noqa: BLE001 - MongoDB down: the page still opens
            return f"Could not count the stored events: {type(exc).__name__}: {exc}"
        return (
            f"{result['matched']} of {result['total']} events of the last 7 days match its "
            "conditions (before thresholds and cooldowns)."
        )

    @admin.display(description="latest matches")
    def latest_matches(self, rule: Rule) -> str:
        if rule.pk is None:
            return "–"
        matches = list(rule.matches.order_by("-matched_at", "-id")[: self.LATEST_MATCHES])
        if not matches:
            return "No match yet."
        listed = format_html_join(
            "",
            "<li>{} {} {} {}</li>",
            (
                (f"{m.matched_at:%Y-%m-%d %H:%M:%S}", m.event_type, m.event_id, m.notification)
                for m in matches
            ),
        )
        every = reverse("admin:rules_rulematch_changelist") + f"?rule__id__exact={rule.pk}"
        return format_html('<ul>{}</ul><a href="{}">Every match</a>', listed, every)

    @admin.action(description="Backtest selected rules on the last 7 days of events")
    def backtest(self, request, queryset) -> None:
        from rules.services import rule_backtest

        for rule in queryset:
            result = rule_backtest(conditions=rule.conditions, days=7)
            self.message_user(
                request,
                f"{rule}: {result['matched']} of {result['total']} events of the last 7 days "
                "match its conditions (before thresholds and cooldowns).",
                messages.INFO,
            )


@admin.register(RuleMatch)
class RuleMatchAdmin(admin.ModelAdmin):
    list_display = ["matched_at", "rule", "event_type", "event_source", "event_id", "threshold_key"]
    # no filter by event type: its choices would be a DISTINCT over every match
    list_filter = ["rule", ("matched_at", admin.DateFieldListFilter)]
    search_fields = ["event_id", "event_source", "rule__name", "threshold_key", "notification"]
    list_select_related = ["rule"]
    readonly_fields = [
        "rule",
        "event_id",
        "event_source",
        "event_type",
        "threshold_key",
        "notification",
        "matched_at",
    ]
    show_full_result_count = False
    ordering = ["-id"]  # the primary key's index: newest first without sorting the table

    def has_add_permission(self, request) -> bool:
        return False
