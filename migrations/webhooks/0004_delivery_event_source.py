"""Deliveries name their event by source and id (CloudEvents' identity), not id alone.

Existing rows get their event's source from MongoDB, where the id alone was unique until now,
so the mapping is exact; rows whose event has expired from MongoDB keep an empty source. The
column is added with a constant default (no table rewrite on PostgreSQL 11+), filled in
chunks, and the unique key is swapped for one that includes it.
"""

from django.db import migrations, models

from core.identity import backfill_event_sources


def fill_sources(apps, schema_editor):
    backfill_event_sources(apps.get_model("webhooks", "Delivery"), schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ("subscriptions", "0002_endpoint_health"),
        ("webhooks", "0003_delivery_dead_index"),
    ]

    operations = [
        migrations.AlterField(
            model_name="delivery",
            name="event_id",
            field=models.CharField(max_length=1024),
        ),
        migrations.AddField(
            model_name="delivery",
            name="event_source",
            field=models.CharField(default="", max_length=1024),
            preserve_default=False,
        ),
        migrations.RunPython(fill_sources, migrations.RunPython.noop, elidable=True),
        migrations.RemoveConstraint(
            model_name="delivery",
            name="delivery_unique_event_target",
        ),
        migrations.AddConstraint(
            model_name="delivery",
            constraint=models.UniqueConstraint(
                fields=("event_id", "event_source", "subscription", "rule"),
                name="delivery_unique_event_target",
                nulls_distinct=False,
            ),
        ),
        migrations.RemoveIndex(
            model_name="delivery",
            name="delivery_event",
        ),
    ]
