"""The three roles, each a Django group with model permissions (created by a migration).

- reader: reads events, deliveries and analytics;
- writer: a reader who may also publish events;
- admin: manages configuration (event types, subscriptions, rules, keys).
"""

from django.db import models


class Role(models.TextChoices):
    READER = "reader", "Reader"
    WRITER = "writer", "Writer"
    ADMIN = "admin", "Admin"


# Apps whose models the roles grant permissions on.
ROLE_APPS = ("accounts", "events", "subscriptions", "rules", "webhooks")
PUBLISH_PERMISSION = ("events", "publish_event")


def role_permissions(role: str, all_codenames: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """``(app_label, codename)`` pairs the role's group holds, out of every permission of
    ``ROLE_APPS``. Readers see everything but API keys; writers also publish; admins do all."""
    views = [
        (app, code)
        for app, code in all_codenames
        if code.startswith("view_") and code != "view_apikey"
    ]
    if role == Role.READER:
        return views
    if role == Role.WRITER:
        return [*views, PUBLISH_PERMISSION]
    return list(all_codenames)
