"""Admin for rules."""

from django.contrib import admin, messages

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
    readonly_fields = ["created_at", "updated_at"]
    actions = ["backtest"]

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
    list_filter = ["rule", "event_type"]
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
    date_hierarchy = "matched_at"
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False
