"""Admin for API keys (created here, shown once, revoked) and the read-only audit log, and the
base of every console page that edits: each add, change and delete is written to the audit log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from accounts.authentication import forget_api_key
from accounts.models import ApiKey, AuditLog
from accounts.services import api_key_create, api_key_revoke, audit_log_record


class AuditedAdmin(admin.ModelAdmin):
    """A model admin whose saves and deletions are in the audit log, with who and when (the
    names of the fields changed, never their values: secrets and headers stay out of it)."""

    def _audit(self, request: HttpRequest, obj, verb: str, message: Any = None) -> None:
        audit_log_record(
            actor=request.user,
            action=f"{obj._meta.model_name}.{verb}",
            obj=obj,
            changes={"admin": message} if message else None,
        )

    def log_addition(self, request: HttpRequest, obj, message):
        self._audit(request, obj, "create")
        return super().log_addition(request, obj, message)

    def log_change(self, request: HttpRequest, obj, message):
        self._audit(request, obj, "change", message)
        return super().log_change(request, obj, message)

    def log_deletions(self, request: HttpRequest, queryset):
        for obj in queryset:
            self._audit(request, obj, "delete")
        return super().log_deletions(request, queryset)


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedAdmin):
    list_display = ["name", "prefix", "role", "active", "last_used_at", "expires_at", "created_at"]
    list_filter = ["role", "active"]
    search_fields = ["name", "prefix"]
    readonly_fields = ["prefix", "last_used_at", "created_by", "created_at", "updated_at"]
    fields = ["name", "role", "active", "expires_at", *readonly_fields]
    list_select_related = ["created_by"]
    actions = ["revoke"]

    @admin.action(description="Revoke selected API keys", permissions=["change"])
    def revoke(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> None:
        revoked = sum(api_key_revoke(api_key=key, actor=request.user) for key in queryset)
        self.message_user(request, f"Revoked {revoked} API key(s).", messages.SUCCESS)

    def save_model(self, request: HttpRequest, obj: ApiKey, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            forget_api_key(obj)
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
    list_filter = ["action", "object_type", ("created_at", admin.DateFieldListFilter)]
    search_fields = ["actor_label", "action", "object_repr", "object_id"]
    list_select_related = ["object_type"]
    show_full_result_count = False
    ordering = ["-id"]  # the primary key's index: newest first without sorting the table

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False
