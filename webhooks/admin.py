"""Admin for deliveries (with their attempts inline) and delivery attempts."""

from django.contrib import admin

from webhooks.models import Delivery, DeliveryAttempt


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
class DeliveryAdmin(admin.ModelAdmin):
    list_display = [
        "id",
        "event_type",
        "event_id",
        "subscription",
        "rule",
        "status",
        "attempts",
        "next_attempt_at",
        "last_status_code",
        "created_at",
    ]
    list_filter = ["status", "is_test", "event_type"]
    search_fields = ["event_id", "event_type", "subscription__url", "subscription__name"]
    list_select_related = ["subscription__subscriber", "rule"]
    autocomplete_fields = ["subscription"]
    raw_id_fields = ["rule"]
    readonly_fields = [
        "event_id",
        "event_type",
        "subscription",
        "rule",
        "partition_key",
        "attempts",
        "last_status_code",
        "last_error",
        "is_test",
        "created_at",
        "updated_at",
        "delivered_at",
    ]
    date_hierarchy = "created_at"
    show_full_result_count = False
    inlines = [DeliveryAttemptInline]

    def has_add_permission(self, request) -> bool:
        return False


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
