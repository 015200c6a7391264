"""Recompute the rollups from the stored events: ``manage.py rebuild_rollups --days 30``."""

from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand

from analytics.rollups import rollups_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the rollups of the last days (whole UTC days) from the stored events, "
        "for events stored before rollups existed. Meant for days the pipeline no longer "
        "writes to: an event the pipeline counts while its day is rebuilt may be left out."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30, help="How many days back (30).")

    def handle(self, *args, days: int, **options):
        if days < 1:
            self.stderr.write("--days must be 1 or more.")
            return
        now = datetime.now(tz=UTC)
        counted = rollups_rebuild(now - timedelta(days=days), now)
        self.stdout.write(f"rollups of {days} days rebuilt from {counted} stored events")
