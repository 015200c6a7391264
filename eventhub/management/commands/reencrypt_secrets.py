"""Rewrite every value encrypted at rest under the newest key of FIELD_ENCRYPTION_KEYS.

Key rotation: put a new key first in FIELD_ENCRYPTION_KEYS (keep the old ones after it), deploy,
run this command, then drop the old keys. It reads and writes the stored tokens as they are
(nothing is decrypted into a query or a log) in one transaction, and prints only counts.
"""

from __future__ import annotations

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import connection, transaction

from core.encryption import EncryptedJSONField, EncryptedTextField, reencrypt


def encrypted_fields():
    """Every (model, field) stored encrypted, across the installed apps."""
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField | EncryptedJSONField):
                yield model, field


class Command(BaseCommand):
    help = "Re-encrypt the secrets kept in PostgreSQL under the newest FIELD_ENCRYPTION_KEYS key."

    def handle(self, *args, **options) -> None:
        quote = connection.ops.quote_name
        with transaction.atomic(), connection.cursor() as cursor:
            for model, field in encrypted_fields():
                table, column = quote(model._meta.db_table), quote(field.column)
                pk = quote(model._meta.pk.column)
                cursor.execute(
                    f"SELECT {pk}, {column} FROM {table} WHERE {column} IS NOT NULL FOR UPDATE"
                )
                rows = [(reencrypt(token), key) for key, token in cursor.fetchall()]
                cursor.executemany(f"UPDATE {table} SET {column} = %s WHERE {pk} = %s", rows)
                self.stdout.write(f"{model._meta.label}.{field.name}: {len(rows)} re-encrypted")
