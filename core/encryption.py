"""Secrets at rest: model fields that PostgreSQL only ever sees encrypted.

Values are Fernet tokens (AES-128-CBC with HMAC-SHA256, from ``cryptography``) under the keys of
``settings.FIELD_ENCRYPTION_KEYS``, newest first: every key decrypts, the newest encrypts
(``MultiFernet``). To rotate, put a new key first, deploy, run ``manage.py reencrypt_secrets``
(which rewrites every value under the newest key), then drop the old key.

What is decrypted stays in the process: the fields' values are never logged, and a token that
no key opens raises ``SecretUnreadable`` naming the field, not the value.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django import forms
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models


class SecretUnreadable(RuntimeError):
    """A stored value no configured key opens (a key was dropped before re-encrypting)."""


@lru_cache(maxsize=4)
def _fernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS holds no key")
    try:
        return MultiFernet([Fernet(key) for key in keys])
    except ValueError as exc:
        raise ImproperlyConfigured(
            "FIELD_ENCRYPTION_KEYS: each key is 32 url-safe base64-encoded bytes "
            "(python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key())')"
        ) from exc


def fernet() -> MultiFernet:
    return _fernet(tuple(settings.FIELD_ENCRYPTION_KEYS))


def encrypt(text: str) -> str:
    return fernet().encrypt(text.encode()).decode()


def decrypt(token: str, *, what: str = "a value") -> str:
    try:
        return fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable(
            f"{what} is encrypted under a key FIELD_ENCRYPTION_KEYS no longer holds"
        ) from exc


def reencrypt(token: str) -> str:
    """The same value under the newest key (``MultiFernet.rotate``)."""
    try:
        return fernet().rotate(token.encode()).decode()
    except InvalidToken as exc:
        raise SecretUnreadable("a stored value opens with no key in FIELD_ENCRYPTION_KEYS") from exc


class EncryptedTextField(models.TextField):
    """Text stored as a Fernet token. It cannot be searched or compared in the database."""

    def from_db_value(self, value: str | None, expression, connection) -> str | None:
        if value is None:
            return None
        return decrypt(value, what=f"{self.model.__name__}.{self.name}")

    def get_prep_value(self, value: Any) -> str | None:
        value = super().get_prep_value(value)
        return None if value is None else encrypt(value)


class EncryptedJSONField(models.TextField):
    """A JSON value stored as one Fernet token (``{}`` and ``[]`` included)."""

    def from_db_value(self, value: str | None, expression, connection) -> Any:
        if value is None:
            return None
        return json.loads(decrypt(value, what=f"{self.model.__name__}.{self.name}"))

    def to_python(self, value: Any) -> Any:
        return value

    def get_prep_value(self, value: Any) -> str | None:
        return None if value is None else encrypt(json.dumps(value, sort_keys=True))

    def value_to_string(self, obj: models.Model) -> str:
        return json.dumps(self.value_from_object(obj))

    def formfield(self, **kwargs: Any):
        """A JSON form field (admin), as a ``models.JSONField`` has, not a text area."""
        return models.Field.formfield(self, **{"form_class": forms.JSONField, **kwargs})
