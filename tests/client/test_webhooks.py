"""Webhook verification, checked against the official standardwebhooks library."""

import base64
import json
import os
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from eventhub_client import WebhookVerificationError, verify_webhook


def secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def signed(key: str, body: bytes, *, at: float | None = None, msg_id: str = "msg_1") -> dict:
    moment = datetime.fromtimestamp(at or time.time(), tz=UTC)
    signature = Webhook(key).sign(msg_id, moment, body.decode())
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": signature,
    }


BODY = json.dumps({"type": "payment.failed", "data": {"amount": 1}}).encode()


def test_a_webhook_signed_by_the_official_library_verifies():
    key = secret()
    assert verify_webhook(key, signed(key, BODY), BODY)["type"] == "payment.failed"


def test_a_tampered_body_fails():
    key = secret()
    with pytest.raises(WebhookVerificationError, match="no signature"):
        verify_webhook(key, signed(key, BODY), BODY.replace(b"1", b"2"))


def test_a_wrong_secret_fails():
    with pytest.raises(WebhookVerificationError):
        verify_webhook(secret(), signed(secret(), BODY), BODY)


def test_an_old_timestamp_fails():
    key = secret()
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        verify_webhook(key, signed(key, BODY, at=time.time() - 3600), BODY)


def test_during_rotation_either_secret_verifies():
    old, new = secret(), secret()
    headers = signed(new, BODY)
    both = f"{signed(old, BODY)['webhook-signature']} {headers['webhook-signature']}"
    headers["webhook-signature"] = both
    assert verify_webhook(old, headers, BODY) and verify_webhook(new, headers, BODY)
    assert verify_webhook([secret(), new], signed(new, BODY), BODY)


def test_our_signatures_verify_with_the_official_library():
    from eventhub_client.webhooks import sign

    key = secret()
    now = int(time.time())
    headers = {
        "webhook-id": "msg_9",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(key, "msg_9", now, BODY),
    }
    assert Webhook(key).verify(BODY, headers)["type"] == "payment.failed"


def test_missing_headers_fail_clearly():
    with pytest.raises(WebhookVerificationError, match="missing or malformed"):
        verify_webhook(secret(), {}, BODY)
