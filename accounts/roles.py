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


def sync_role_groups(apps) -> None:
    """Create the role groups and give them their permissions (for data migrations: call it
    again from a migration whenever a migration adds models)."""
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations ran; make sure they exist now.
    for app_config in apps.get_app_configs():
        # create_permissions skips apps without a models module, which is how migration
        # states look; mark them for the call and put back what was there
        previous = getattr(app_config, "models_module", None)
        app_config.models_module = previous or True
        try:
            create_permissions(app_config, verbosity=0, apps=apps)
        finally:
            app_config.models_module = previous

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = {
        (p.content_type.app_label, p.codename): p
        for p in Permission.objects.filter(content_type__app_label__in=ROLE_APPS).select_related(
            "content_type"
        )
    }
    for role in Role.values:
        group, _ = Group.objects.get_or_create(name=role)
        group.permissions.set(
            permissions[key] for key in role_permissions(role, sorted(permissions))
        )
