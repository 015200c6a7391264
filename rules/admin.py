"""Admin for rules."""

from django.contrib import admin

from rules.models import Rule, RuleMatch


@admin.register(Rule)
class RuleAdmin(admin.ModelAdmin):
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


@admin.register(RuleMatch)
class RuleMatchAdmin(admin.ModelAdmin):
    list_display = ["matched_at", "rule", "event_type", "event_id", "threshold_key"]
    list_filter = ["rule", "event_type"]
    search_fields = ["event_id", "rule__name", "threshold_key", "notification"]
    list_select_related = ["rule"]
    readonly_fields = [
        "rule",
        "event_id",
        "event_type",
        "threshold_key",
        "notification",
        "matched_at",
    ]
    date_hierarchy = "matched_at"
    show_full_result_count = False

    def has_add_permission(self, request) -> bool:
        return False
