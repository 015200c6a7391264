"""Verifying webhooks signed per Standard Webhooks 1.0, for receivers.

Three headers come with each webhook: ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``, a space-separated list of ``v1,<base64 HMAC-SHA256>`` signatures of
``"{webhook-id}.{webhook-timestamp}.{body}"`` made with the secret's key (``whsec_`` + base64).
During a secret rotation the sender signs with the old and the new secret and the receiver may
know either, so any one valid signature under any one of the receiver's secrets is enough.

Only the standard library is used, so receivers need neither Django nor this client's HTTP side.

    from eventhub_client import verify_webhook, WebhookVerificationError

    try:
        event = verify_webhook(secret, request.headers, request.body)
    except WebhookVerificationError:
        return 400
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

SECRET_PREFIX = "whsec_"
TOLERANCE_SECONDS = 5 * 60


class WebhookVerificationError(Exception):
    """The webhook is not authentic, too old or too new, or its headers are malformed."""


def secret_key(secret: str | bytes) -> bytes:
    """The HMAC key of a ``whsec_...`` secret (raw bytes are taken as the key itself)."""
    if isinstance(secret, bytes):
        key = secret
    else:
        try:
            # "==" accepts unpadded base64 as the official library does; extra padding is ignored
            key = base64.b64decode(secret.removeprefix(SECRET_PREFIX) + "==")
        except (binascii.Error, ValueError) as exc:
            raise ValueError("a webhook secret is whsec_ followed by base64") from exc
    if not key:
        raise ValueError("the webhook secret is empty")
    return key


def _digest(key: bytes, msg_id: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()


def sign(secret: str | bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """A ``v1,<base64>`` signature, as a sender puts it in ``webhook-signature``."""
    digest = _digest(secret_key(secret), msg_id, str(timestamp), body)
    return "v1," + base64.b64encode(digest).decode()


def _signatures(header: str) -> list[bytes]:
    """The decoded ``v1`` signatures of the header; other versions and junk are skipped."""
    found = []
    for entry in header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue  # e.g. v1a (asymmetric): not ours to check, another entry may match
        try:
            found.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found


def verify_webhook(
    secrets: str | bytes | Iterable[str | bytes],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float = TOLERANCE_SECONDS,
    now: float | None = None,
) -> dict[str, Any]:
    """Check the signature headers against the raw ``body``; return the parsed JSON object.

    ``secrets`` is one secret or several (rotation). ``body`` must be the bytes as received,
    before any parsing: re-serialised JSON would not match. Raises
    ``WebhookVerificationError`` when no signature matches, the timestamp is more than
    ``tolerance`` seconds away from now (a replayed webhook), or the headers are missing.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    msg_id = lowered.get("webhook-id")
    raw_timestamp = lowered.get("webhook-timestamp")
    header = lowered.get("webhook-signature")
    if not (msg_id and raw_timestamp and header):
        raise WebhookVerificationError("missing webhook-id, webhook-timestamp or signature")
    try:
        timestamp = int(raw_timestamp)
    except ValueError as exc:
        raise WebhookVerificationError("malformed webhook-timestamp") from exc
    current = time.time() if now is None else now
    if timestamp < current - tolerance:
        raise WebhookVerificationError("the webhook timestamp is too old")
    if timestamp > current + tolerance:
        raise WebhookVerificationError("the webhook timestamp is too new")

    candidates = [secrets] if isinstance(secrets, str | bytes) else list(secrets)
    if not candidates:
        raise ValueError("no webhook secret given")
    given = _signatures(header)
    # Every comparison runs (no early exit between secrets) and each is constant-time.
    matched = False
    for secret in candidates:
        expected = _digest(secret_key(secret), msg_id, raw_timestamp, body)
        for signature in given:
            matched |= hmac.compare_digest(expected, signature)
    if not matched:
        raise WebhookVerificationError("no signature matches")
    try:
        payload = json.loads(body)
    except ValueError as exc:
        raise WebhookVerificationError("the webhook body is not JSON") from exc
    if not isinstance(payload, dict):
        raise WebhookVerificationError("the webhook body is not a JSON object")
    return payload
