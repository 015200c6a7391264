"""Rule matches name their event by source and id (see webhooks 0004 for the backfill)."""

from django.db import migrations, models

from core.identity import backfill_event_sources


def fill_sources(apps, schema_editor):
    backfill_event_sources(apps.get_model("rules", "RuleMatch"), schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ("rules", "0002_rule_match"),
    ]

    operations = [
        migrations.AlterField(
            model_name="rulematch",
            name="event_id",
            field=models.CharField(max_length=1024),
        ),
        migrations.AddField(
            model_name="rulematch",
            name="event_source",
            field=models.CharField(default="", max_length=1024),
            preserve_default=False,
        ),
        migrations.RunPython(fill_sources, migrations.RunPython.noop, elidable=True),
        migrations.RemoveConstraint(
            model_name="rulematch",
            name="rulematch_unique_event",
        ),
        migrations.AddConstraint(
            model_name="rulematch",
            constraint=models.UniqueConstraint(
                fields=("rule", "event_id", "event_source"), name="rulematch_unique_event"
            ),
        ),
    ]
