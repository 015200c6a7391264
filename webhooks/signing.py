"""Signing secrets in the Standard Webhooks format (``whsec_`` + base64 of 32 random bytes)."""

from __future__ import annotations

import base64
import secrets

SECRET_PREFIX = "whsec_"


def generate_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()
