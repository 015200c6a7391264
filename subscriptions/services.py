"""Writes for subscriptions: signing-secret creation and rotation, state changes with audit."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from prometheus_client import Counter

from accounts.services import audit_log_record
from core.problems import Unprocessable, field_errors
from core.signing import generate_secret
from subscriptions.models import SigningSecret, Subscriber, Subscription

SUBSCRIPTIONS_DISABLED = Counter(
    "subscriptions_disabled_total",
    "Subscriptions disabled: by a 410 Gone, the circuit breaker or an operator",
)


def subscription_add_secret(*, subscription: Subscription) -> str:
    """Give the subscription a new secret and return it: the only time it is shown."""
    secret = generate_secret()
    SigningSecret.objects.create(subscription=subscription, secret=secret)
    return secret


@transaction.atomic
def subscription_rotate_secret(
    *,
    subscription: Subscription,
    actor: AbstractBaseUser | None = None,
    overlap: timedelta | None = None,
) -> str:
    """Add a new secret; secrets valid now stay valid for ``overlap`` (default from settings)."""
    if overlap is None:
        overlap = timedelta(hours=settings.WEBHOOK_SECRET_OVERLAP_HOURS)
    now = timezone.now()
    ends = now + overlap
    subscription.secrets.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=ends)).update(
        expires_at=ends
    )
    secret = subscription_add_secret(subscription=subscription)
    audit_log_record(
        actor=actor,
        action="subscription.rotate_secret",
        obj=subscription,
        changes={"old_secrets_expire_at": ends.isoformat()},
    )
    return secret


@transaction.atomic
def subscription_set_state(
    *,
    subscription: Subscription,
    state: str,
    reason: str = "",
    actor: AbstractBaseUser | None = None,
) -> None:
    """Pause, resume or disable a subscription and record who did it."""
    previous = subscription.state
    if state == Subscription.State.ACTIVE:
        subscription.resume()
    elif state == Subscription.State.PAUSED:
        subscription.pause(reason)
    else:
        subscription.disable(reason)
        if previous != Subscription.State.DISABLED:
            SUBSCRIPTIONS_DISABLED.inc()
    audit_log_record(
        actor=actor,
        action=f"subscription.{state}",
        obj=subscription,
        changes={"state": [previous, state], "reason": reason},
    )


class SubscriptionInvalid(Unprocessable):
    default_code = "invalid-subscription"
    title = "Invalid subscription"


@transaction.atomic
def subscription_create(
    *,
    subscriber: Subscriber,
    url: str,
    event_types: list[str],
    filter: dict | None = None,
    name: str = "",
    actor: AbstractBaseUser | None = None,
    **options,
) -> tuple[Subscription, str]:
    """Validate and create a subscription with its first secret, returned once."""
    subscription = Subscription(
        subscriber=subscriber,
        url=url,
        event_types=event_types,
        filter=filter,
        name=name,
        **options,
    )
    try:
        subscription.full_clean()
    except ValidationError as exc:
        raise SubscriptionInvalid(
            "The subscription is not valid.", extra={"errors": field_errors(exc)}
        ) from exc
    subscription.save()
    secret = subscription_add_secret(subscription=subscription)
    audit_log_record(
        actor=actor,
        action="subscription.create",
        obj=subscription,
        changes={"url": url, "event_types": event_types},
    )
    return subscription, secret
