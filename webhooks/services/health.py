"""Endpoint health: success and failure counters, the circuit breaker that disables a failing
subscription, 410 Gone."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import F
from django.db.models.functions import Coalesce

from subscriptions.models import Subscription
from subscriptions.services import subscription_set_state
from webhooks import backoff
from webhooks.sender import Outcome

logger = logging.getLogger(__name__)


def record_health(subscription: Subscription, results: list[Outcome], now: datetime) -> None:
    """Update the endpoint's health counters, and open the circuit breaker when it has failed
    ``WEBHOOK_BREAKER_FAILURES`` times in a row for at least ``WEBHOOK_BREAKER_SECONDS``."""
    succeeded = sum(1 for r in results if r.succeeded)
    last_success = max((i for i, r in enumerate(results) if r.succeeded), default=-1)
    trailing = len(results) - last_success - 1
    failures = [r for r in results if not r.succeeded]
    changes: dict[str, Any] = {
        "attempts_total": F("attempts_total") + len(results),
        "attempts_succeeded": F("attempts_succeeded") + succeeded,
    }
    if failures:
        changes["last_error"] = backoff.describe(failures[-1])
        changes["last_error_at"] = now
    if succeeded:
        changes["last_success_at"] = now
        changes["consecutive_failures"] = trailing
        changes["failing_since"] = now if trailing else None
    else:
        changes["consecutive_failures"] = F("consecutive_failures") + trailing
        changes["failing_since"] = Coalesce(F("failing_since"), now)
    queryset = Subscription.objects.filter(pk=subscription.pk)
    queryset.update(**changes)
    if succeeded or not failures:
        return
    state = queryset.values("consecutive_failures", "failing_since", "state").first()
    if (
        state
        and state["state"] == Subscription.State.ACTIVE
        and state["consecutive_failures"] >= settings.WEBHOOK_BREAKER_FAILURES
        and state["failing_since"] <= now - timedelta(seconds=settings.WEBHOOK_BREAKER_SECONDS)
    ):
        subscription_disable(
            subscription=subscription,
            reason=(
                f"{state['consecutive_failures']} failed attempts in a row since "
                f"{state['failing_since']:%Y-%m-%d %H:%M:%S} UTC; last: {changes['last_error']}"
            ),
        )


def subscription_disable(*, subscription: Subscription, reason: str) -> None:
    """Disable an endpoint on the system's own account (410 Gone, the circuit breaker).
    Its new deliveries are held from now on, not dropped."""
    subscription.refresh_from_db(fields=["state"])
    if subscription.state == Subscription.State.DISABLED:
        return
    logger.warning("disabling subscription %s: %s", subscription.pk, reason)
    subscription_set_state(
        subscription=subscription, state=Subscription.State.DISABLED, reason=reason[:500]
    )
