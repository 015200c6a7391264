"""Admin for API keys (created here, shown once) and the read-only audit log."""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest

from accounts.models import ApiKey, AuditLog
from accounts.services import api_key_create


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ["name", "prefix", "role", "active", "last_used_at", "expires_at", "created_at"]
    list_filter = ["role", "active"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "last_used_at", "created_by", "created_at", "updated_at"]
    fields = ["name", "role", "active", "expires_at", *readonly_fields]

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        created, plaintext = api_key_create(name=obj.name, role=obj.role, created_by=request.user)
        created.active, created.expires_at = obj.active, obj.expires_at
        created.save(update_fields=["active", "expires_at"])
        obj.pk = created.pk
        obj.refresh_from_db()
        self.message_user(
            request,
            f"API key for {obj.name}: {plaintext} (copy it now: it will not be shown again).",
            messages.WARNING,
        )


@admin.register(AuditLog)
class AuditLogAdmin(admin.ModelAdmin):
    list_display = ["created_at", "actor_label", "action", "object_type", "object_repr"]
    list_filter = ["action", "object_type"]
    search_fields = ["actor_label", "action", "object_repr", "object_id"]
    list_select_related = ["object_type"]
    date_hierarchy = "created_at"
    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
