"""Webhook verification, checked against the official ``standardwebhooks`` library.

The official library signs and our verifier checks, and the other way round, so both sides
agree on the signed content, the encodings and the secret format.
"""

from __future__ import annotations

import base64
import json
import os
import time
from datetime import UTC, datetime

import pytest
from standardwebhooks.webhooks import Webhook

from eventhub_client import WebhookVerificationError, sign, verify_webhook

BODY = json.dumps({"type": "payment.failed", "data": {"amount": 1, "note": "café"}}).encode()


def new_secret() -> str:
    return "whsec_" + base64.b64encode(os.urandom(32)).decode()


def signed(secret: str, body: bytes = BODY, *, at: float | None = None, msg_id: str = "msg_1"):
    """Headers signed by the official library."""
    moment = datetime.fromtimestamp(time.time() if at is None else at, tz=UTC)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(moment.timestamp())),
        "webhook-signature": Webhook(secret).sign(msg_id, moment, body.decode()),
    }


def test_a_webhook_signed_by_the_official_library_verifies():
    secret = new_secret()
    assert verify_webhook(secret, signed(secret), BODY) == json.loads(BODY)


def test_header_names_are_case_insensitive():
    secret = new_secret()
    headers = {name.title(): value for name, value in signed(secret).items()}
    assert verify_webhook(secret, headers, BODY)["type"] == "payment.failed"


def test_a_tampered_body_fails():
    secret = new_secret()
    with pytest.raises(WebhookVerificationError, match="no signature"):
        verify_webhook(secret, signed(secret), BODY.replace(b'"amount": 1', b'"amount": 9'))


def test_a_changed_id_or_timestamp_fails():
    secret = new_secret()
    headers = signed(secret)
    with pytest.raises(WebhookVerificationError, match="no signature"):
        verify_webhook(secret, {**headers, "webhook-id": "msg_2"}, BODY)
    later = str(int(headers["webhook-timestamp"]) + 1)
    with pytest.raises(WebhookVerificationError, match="no signature"):
        verify_webhook(secret, {**headers, "webhook-timestamp": later}, BODY)


def test_a_wrong_secret_fails():
    with pytest.raises(WebhookVerificationError, match="no signature"):
        verify_webhook(new_secret(), signed(new_secret()), BODY)


def test_an_expired_timestamp_fails_even_when_the_signature_is_good():
    secret = new_secret()
    with pytest.raises(WebhookVerificationError, match="too old"):
        verify_webhook(secret, signed(secret, at=time.time() - 301), BODY)
    # inside the 5 minutes it is fine
    assert verify_webhook(secret, signed(secret, at=time.time() - 240), BODY)


def test_a_timestamp_from_the_future_fails():
    secret = new_secret()
    with pytest.raises(WebhookVerificationError, match="too new"):
        verify_webhook(secret, signed(secret, at=time.time() + 600), BODY)


def test_rotation_the_sender_signs_with_both_and_either_secret_verifies():
    old, new = new_secret(), new_secret()
    headers = signed(new)
    both = f"{signed(old)['webhook-signature']} {headers['webhook-signature']}"
    headers["webhook-signature"] = both
    assert verify_webhook(old, headers, BODY)
    assert verify_webhook(new, headers, BODY)
    with pytest.raises(WebhookVerificationError):
        verify_webhook(new_secret(), headers, BODY)


def test_rotation_the_receiver_knows_two_secrets():
    old, new = new_secret(), new_secret()
    assert verify_webhook([old, new], signed(old), BODY)
    assert verify_webhook([old, new], signed(new), BODY)
    with pytest.raises(WebhookVerificationError):
        verify_webhook([old, new], signed(new_secret()), BODY)


def test_other_signature_versions_and_junk_are_skipped():
    secret = new_secret()
    headers = signed(secret)
    good = headers["webhook-signature"]
    headers["webhook-signature"] = f"v1a,AAAA v1,not-base64!! v1,é {good}"
    assert verify_webhook(secret, headers, BODY)
    headers["webhook-signature"] = "v1a,AAAA v1,é v2," + good.split(",")[1]
    with pytest.raises(WebhookVerificationError, match="no signature"):
        verify_webhook(secret, headers, BODY)


@pytest.mark.parametrize(
    "missing", ["webhook-id", "webhook-timestamp", "webhook-signature"], ids=lambda n: n
)
def test_missing_headers_fail_clearly(missing):
    secret = new_secret()
    headers = signed(secret)
    del headers[missing]
    with pytest.raises(WebhookVerificationError, match="missing"):
        verify_webhook(secret, headers, BODY)


def test_a_malformed_timestamp_fails():
    secret = new_secret()
    with pytest.raises(WebhookVerificationError, match="malformed"):
        verify_webhook(secret, {**signed(secret), "webhook-timestamp": "soon"}, BODY)


def test_an_unpadded_secret_works_like_the_official_library():
    secret = "whsec_" + base64.b64encode(os.urandom(31)).decode().rstrip("=")
    assert verify_webhook(secret, signed(secret), BODY)


def test_our_signatures_verify_with_the_official_library():
    secret = new_secret()
    now = int(time.time())
    headers = {
        "webhook-id": "msg_9",
        "webhook-timestamp": str(now),
        "webhook-signature": sign(secret, "msg_9", now, BODY),
    }
    assert Webhook(secret).verify(BODY, headers) == json.loads(BODY)
