"""Create the reader / writer / admin groups with their model permissions."""

from django.contrib.auth.management import create_permissions
from django.db import migrations

from accounts.roles import ROLE_APPS, Role, role_permissions


def create_roles(apps, schema_editor):
    # Permissions are normally created after all migrations ran; make sure they exist now.
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None

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


def remove_roles(apps, schema_editor):
    apps.get_model("auth", "Group").objects.filter(name__in=Role.values).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("events", "0001_initial"),
        ("subscriptions", "0001_initial"),
        ("rules", "0001_initial"),
        ("webhooks", "0001_initial"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
