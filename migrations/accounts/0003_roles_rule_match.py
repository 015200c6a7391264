"""Give the role groups their permissions on the rule-match model."""

from django.db import migrations

from accounts.roles import sync_role_groups


def sync(apps, schema_editor):
    sync_role_groups(apps)


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0002_roles"),
        ("rules", "0002_rule_match"),
    ]

    operations = [migrations.RunPython(sync, migrations.RunPython.noop)]
