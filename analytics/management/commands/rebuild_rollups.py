"""Recompute the rollups from the stored events: ``manage.py rebuild_rollups --days 30``."""

from datetime import UTC, datetime, timedelta

from django.core.management.base import BaseCommand

from analytics.rollups import ledger_reset, rollups_rebuild


class Command(BaseCommand):
    help = (
        "Recompute the rollups of the last days (whole UTC days) from the stored events, "
        "for events stored before rollups existed. Meant for days the pipeline no longer "
        "writes to: an event the pipeline counts while its day is rebuilt may be left out."
    )

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=30, help="How many days back (30).")
        parser.add_argument(
            "--reset-ledger",
            action="store_true",
            help="Also forget the offsets counted per events topic partition (needed once the "
            "events topic was recreated, as its offsets start again from 0).",
        )

    def handle(self, *args, days: int, reset_ledger: bool, **options):
        if days < 1:
            self.stderr.write("--days must be 1 or more.")
            return
        if reset_ledger:
            self.stdout.write(f"ledger of {ledger_reset()} partition(s) forgotten")
        now = datetime.now(tz=UTC)
        counted = rollups_rebuild(now - timedelta(days=days), now)
        self.stdout.write(f"rollups of {days} days rebuilt from {counted} stored events")
