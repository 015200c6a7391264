"""Create EventHub's Kafka topics, or bring them to the partitions and retention of settings
(idempotent)."""

import time

from confluent_kafka import KafkaException
from django.core.management.base import BaseCommand, CommandError

from core import kafka


class Command(BaseCommand):
    help = (
        "Create the events, dead-letter and quarantine topics if they do not exist; add "
        "partitions and set retention where settings ask for more or other."
    )

    def add_arguments(self, parser):
        parser.add_argument("--timeout", type=float, default=15.0, help="Seconds to wait.")

    def handle(self, *args, timeout: float, **options):
        specs = kafka.configured_topics()
        try:
            outcome = kafka.ensure_topics(specs, timeout=timeout)
            counts = self._counts([s.name for s in specs], timeout)
        except KafkaException as exc:
            raise CommandError(f"Kafka did not answer: {exc}") from exc
        for spec in specs:
            line = f"{spec.name}: {outcome[spec.name]}, {counts.get(spec.name, '?')} partition(s)"
            if counts.get(spec.name, spec.partitions) > spec.partitions:
                line += f" (settings ask for {spec.partitions}; Kafka cannot remove partitions)"
                self.stdout.write(self.style.WARNING(line))
            else:
                self.stdout.write(line)

    def _counts(self, names: list[str], timeout: float) -> dict[str, int]:
        """Partitions per topic, once the broker's metadata lists every new topic (it may
        lag a moment behind their creation)."""
        deadline = time.monotonic() + timeout
        while True:
            counts = kafka.partition_counts(names, timeout=timeout)
            if all(counts.get(name) for name in names) or time.monotonic() > deadline:
                return counts
            time.sleep(0.2)
