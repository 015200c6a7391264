"""Publish a little demo traffic, so the dashboard and the demo receiver have something to show."""

from django.core.management.base import BaseCommand

from eventhub.demo import demo_traffic
from events.services import outcomes_tally


class Command(BaseCommand):
    help = "Publish demo events of the seed_demo types (local use)."

    def add_arguments(self, parser):
        parser.add_argument("--count", type=int, default=30, help="events to publish (30)")
        parser.add_argument("--seed", type=int, default=None, help="repeatable data")

    def handle(self, *args, count: int, seed: int | None, **options):
        tally = outcomes_tally([outcome for _, outcome in demo_traffic(count=count, seed=seed)])
        shown = ", ".join(f"{n} {status}" for status, n in tally.items() if n)
        self.stdout.write(f"Published {count} demo events: {shown}.")
