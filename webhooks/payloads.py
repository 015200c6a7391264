"""What a webhook request carries: the body and headers built from a stored event.

Standard Webhooks subscriptions get the CloudEvents envelope as a structured JSON body;
CloudEvents subscriptions get binary mode (the event's ``data`` as the body, its attributes in
``ce-*`` headers). Both are signed with the ``webhook-*`` headers over the exact bytes sent.
"""

from __future__ import annotations

import json
from typing import Any

from core import __version__
from core.documents import document_to_event
from core.signing import secret_key, signature_headers
from subscriptions.models import Subscription

USER_AGENT = f"EventHub/{__version__}"
# attributes of the stored event sent as CloudEvents extensions (when set)
EXTENSIONS = ("severity", "partitionkey", "traceid", "sessionid")
MASK = "***"


def envelope_of(document: dict[str, Any]) -> dict[str, Any]:
    """The CloudEvents envelope of an event stored in MongoDB, without empty attributes."""
    event = document_to_event(document)
    envelope: dict[str, Any] = {
        "specversion": "1.0",
        "id": event["id"],
        "source": event["source"],
        "type": event["type"],
        "time": event["time"],
        "subject": event["subject"],
        "datacontenttype": "application/json",
        **{name: event[name] for name in EXTENSIONS},
        "data": event["data"],
    }
    if event["metadata"]:
        envelope["metadata"] = event["metadata"]
    return {k: v for k, v in envelope.items() if v is not None}


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def build_request(
    subscription: Subscription,
    envelope: dict[str, Any],
    *,
    message_id: str,
    timestamp: int,
    secrets: list[str],
) -> tuple[bytes, dict[str, str]]:
    """The body and headers for one delivery. The subscription's own headers go first, so
    they cannot replace the content type, the user agent or the signature."""
    headers = {name.lower(): value for name, value in (subscription.headers or {}).items()}
    if subscription.output_format == Subscription.OutputFormat.CLOUDEVENTS:
        body = _dumps(envelope.get("data"))
        for name, value in envelope.items():
            if name not in ("data", "datacontenttype", "metadata"):
                headers[f"ce-{name}"] = str(value)
    else:
        body = _dumps(envelope)
    headers["content-type"] = "application/json"
    headers["user-agent"] = USER_AGENT
    headers.update(signature_headers([secret_key(s) for s in secrets], message_id, timestamp, body))
    return body, headers


def recorded_headers(subscription: Subscription, headers: dict[str, str]) -> dict[str, str]:
    """Headers as kept on the attempt: the subscription's own (often credentials) masked."""
    own = {name.lower() for name in subscription.headers or {}}
    return {k: (MASK if k.lower() in own else v) for k, v in headers.items()}
