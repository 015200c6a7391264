"""A small Python client for EventHub: publish events over REST, verify webhook signatures.

    from eventhub_client import EventHubClient, EventHubError, verify_webhook

    with EventHubClient("http://127.0.0.1:8000", api_key="ehk_...") as client:
        client.publish({"event_type": "payment.failed", "user_id": "u-1", "amount": 12.5,
                        "data": {"currency": "EUR"}})

It depends only on urllib3 and the standard library, not on Django.
"""

from eventhub_client.client import EventHubClient, EventHubConnectionError, EventHubError
from eventhub_client.webhooks import WebhookVerificationError, sign, verify_webhook

__all__ = [
    "EventHubClient",
    "EventHubConnectionError",
    "EventHubError",
    "WebhookVerificationError",
    "sign",
    "verify_webhook",
]
