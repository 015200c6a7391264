"""Signing secrets and subscription header values encrypted at rest (core.encryption).

The columns become text holding the plain values first (jsonb cast to its JSON text), every
row is then encrypted under the newest of FIELD_ENCRYPTION_KEYS, and only then do the fields
become the encrypted ones, which read nothing but tokens. Reversing decrypts them again.
"""

import json

from django.db import migrations, models

import core.encryption


def encrypt_rows(apps, schema_editor):
    from core.encryption import encrypt

    SigningSecret = apps.get_model("subscriptions", "SigningSecret")
    Subscription = apps.get_model("subscriptions", "Subscription")
    for pk, secret in SigningSecret.objects.values_list("pk", "secret"):
        SigningSecret.objects.filter(pk=pk).update(secret=encrypt(secret))
    for pk, headers in Subscription.objects.values_list("pk", "headers"):
        # the jsonb column cast to text holds JSON; normalised as the field writes it
        text = json.dumps(json.loads(headers) if headers else {}, sort_keys=True)
        Subscription.objects.filter(pk=pk).update(headers=encrypt(text))


def decrypt_rows(apps, schema_editor):
    from core.encryption import decrypt

    SigningSecret = apps.get_model("subscriptions", "SigningSecret")
    Subscription = apps.get_model("subscriptions", "Subscription")
    for pk, secret in SigningSecret.objects.values_list("pk", "secret"):
        SigningSecret.objects.filter(pk=pk).update(secret=decrypt(secret))
    for pk, headers in Subscription.objects.values_list("pk", "headers"):
        Subscription.objects.filter(pk=pk).update(headers=decrypt(headers))


class Migration(migrations.Migration):
    dependencies = [("subscriptions", "0002_endpoint_health")]

    operations = [
        migrations.AlterField(
            model_name="signingsecret",
            name="secret",
            field=models.TextField(editable=False),
        ),
        migrations.AlterField(
            model_name="subscription",
            name="headers",
            field=models.TextField(default="{}", blank=True),
        ),
        migrations.RunPython(encrypt_rows, decrypt_rows),
        migrations.AlterField(
            model_name="signingsecret",
            name="secret",
            field=core.encryption.EncryptedTextField(editable=False),
        ),
        migrations.AlterField(
            model_name="subscription",
            name="headers",
            field=core.encryption.EncryptedJSONField(
                blank=True, default=dict, help_text="Extra HTTP headers to send."
            ),
        ),
    ]
