"""Admin for event types: the schema and its example validated on save, the version rising
with each schema change, and a payload to try against the schema being saved."""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.http import HttpRequest

from accounts.admin import AuditedAdmin
from events.models import EventType, payload_errors, schema_errors


class EventTypeForm(forms.ModelForm):
    try_payload = forms.JSONField(
        required=False,
        label="Try a payload",
        help_text="Optional: an event's data to check against the schema above (not saved). "
        "When it fails, nothing is saved and the faults are shown with their JSON pointers.",
    )

    class Meta:
        model = EventType
        fields = ["name", "description", "enabled", "retention_days", "schema", "example"]

    def clean(self) -> dict:
        cleaned = super().clean()
        payload = cleaned.get("try_payload")
        schema = cleaned.get("schema")
        if payload is not None and isinstance(schema, dict) and not schema_errors(schema):
            problems = payload_errors(schema, payload)
            if problems:
                self.add_error("try_payload", problems)
        return cleaned


@admin.register(EventType)
class EventTypeAdmin(AuditedAdmin):
    form = EventTypeForm
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
        "try_payload",
        *readonly_fields,
    ]

    def save_model(self, request: HttpRequest, obj: EventType, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if form.cleaned_data.get("try_payload") is not None:
            self.message_user(
                request,
                f"The payload tried satisfies the schema of {obj} (version {obj.schema_version}).",
                messages.SUCCESS,
            )
