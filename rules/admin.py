"""Admin for rules."""

from django.contrib import admin

from rules.models import Rule


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
