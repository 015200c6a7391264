from django.apps import AppConfig


class WebhookBaselineConfig(AppConfig):
    name = "webhook_baseline"
    default_auto_field = "django.db.models.BigAutoField"
