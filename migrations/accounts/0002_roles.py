"""Create the reader / writer / admin groups with their model permissions."""

from django.db import migrations

from accounts.roles import Role, sync_role_groups


def create_roles(apps, schema_editor):
    sync_role_groups(apps)


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
