"""Verifying webhooks signed per Standard Webhooks 1.0, for receivers.

The signature is ``v1,<base64 HMAC-SHA256 of "{webhook-id}.{webhook-timestamp}.{body}">`` with
the secret's key (``whsec_`` + base64); several space-separated signatures may come during a
secret rotation, and any valid one is enough.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from typing import Any

TOLERANCE_SECONDS = 5 * 60


class WebhookVerificationError(Exception):
    """The webhook is not authentic or too old."""


def _key(secret: str) -> bytes:
    return base64.b64decode(secret.removeprefix("whsec_"))


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def verify_webhook(
    secrets: str | list[str], headers: Mapping[str, str], body: bytes, *, now: float | None = None
) -> Any:
    """Check the signature headers against ``body``; return the parsed JSON body."""
    lowered = {name.lower(): value for name, value in headers.items()}
    try:
        msg_id = lowered["webhook-id"]
        timestamp = int(lowered["webhook-timestamp"])
        signatures = lowered["webhook-signature"].split()
    except (KeyError, ValueError) as exc:
        raise WebhookVerificationError(f"missing or malformed signature headers: {exc}") from exc
    if abs((now or time.time()) - timestamp) > TOLERANCE_SECONDS:
        raise WebhookVerificationError("the timestamp is outside the tolerance")
    candidates = [secrets] if isinstance(secrets, str) else list(secrets)
    expected = {sign(secret, msg_id, timestamp, body) for secret in candidates}
    for signature in signatures:
        if any(hmac.compare_digest(signature, e) for e in expected):
            return json.loads(body)
    raise WebhookVerificationError("no signature matches")
