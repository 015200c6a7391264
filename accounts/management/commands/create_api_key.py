"""Create an API key for a producer and print it once."""

from django.core.management.base import BaseCommand

from accounts.roles import Role
from accounts.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key; the key is printed once and only its hash is stored."

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--role", default=Role.WRITER, choices=Role.values)

    def handle(self, *args, name: str, role: str, **options):
        api_key, plaintext = api_key_create(name=name, role=role)
        self.stderr.write(f"API key {api_key.prefix}… ({role}) created; it is not shown again:")
        self.stdout.write(plaintext)
