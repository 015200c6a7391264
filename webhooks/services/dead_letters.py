"""Dead letters: a delivery whose retries are exhausted is published to the DLQ topic (it stays
in PostgreSQL for replay)."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.utils import timezone

from core import kafka
from core.identity import EventKey
from subscriptions.models import Subscription
from webhooks.models import message_id
from webhooks.services.claims import Claimed

logger = logging.getLogger(__name__)


def dlq_message(
    item: Claimed,
    subscription: Subscription,
    envelope: dict[str, Any] | None,
    error: str,
    status_code: int | None,
) -> bytes:
    return json.dumps(
        {
            "delivery_id": item.id,
            "message_id": message_id(item.id),
            "attempts": item.attempt,
            "last_error": error,
            "last_status_code": status_code,
            "dead_at": timezone.now().isoformat(),
            "subscription": {
                "id": subscription.pk,
                "name": subscription.name,
                "url": subscription.url,
            },
            "event": envelope or {"id": item.event_id, "source": item.event_source},
        },
        default=str,
    ).encode()


def publish_dead(
    dead: list[tuple[Claimed, str, int | None]],
    subscriptions: dict[int, Subscription],
    events: dict[EventKey, dict[str, Any]],
) -> None:
    """Publish dead deliveries to the DLQ topic. They stay in PostgreSQL whatever happens
    here, so a broker outage costs the copy on Kafka, never the delivery itself."""
    publisher = kafka.get_publisher()
    futures = []
    try:
        for item, error, status_code in dead:
            subscription = subscriptions[item.subscription_id]
            futures.append(
                publisher.publish(
                    settings.KAFKA_TOPIC_DLQ,
                    dlq_message(item, subscription, events.get(item.event_key), error, status_code),
                    key=str(subscription.pk).encode(),
                    headers=[
                        ("ce_id", item.event_id.encode()),
                        ("ce_source", item.event_source.encode()),
                    ],
                )
            )
        for future in futures:
            future.result(settings.KAFKA_MESSAGE_TIMEOUT_MS / 1000 + 2)
    except Exception:
        logger.exception("could not publish %d dead deliveries to the DLQ topic", len(dead))
