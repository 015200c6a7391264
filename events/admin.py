"""Admin for event types."""

from django.contrib import admin

from accounts.admin import AuditedAdmin
from events.models import EventType


@admin.register(EventType)
class EventTypeAdmin(AuditedAdmin):
    list_display = ["name", "enabled", "schema_version", "retention_days", "updated_at"]
    list_filter = ["enabled"]
    search_fields = ["name", "description"]
    readonly_fields = ["schema_version", "created_at", "updated_at"]
    fields = [
        "name",
        "description",
        "enabled",
        "retention_days",
        "schema",
        "example",
        *readonly_fields,
    ]
