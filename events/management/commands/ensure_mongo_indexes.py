"""Create the MongoDB indexes EventHub's queries need (idempotent)."""

from django.core.management.base import BaseCommand, CommandError
from pymongo.errors import PyMongoError

from core import mongo


class Command(BaseCommand):
    help = "Create the indexes of the events and metrics collections if they do not exist."

    def handle(self, *args, **options):
        try:
            created = mongo.ensure_indexes()
        except PyMongoError as exc:
            raise CommandError(f"MongoDB did not answer: {exc}") from exc
        for collection, names in created.items():
            self.stdout.write(f"{collection}: {', '.join(names)}")
