"""Reads of subscriptions: as the API shows them, and their health as operators look for it."""

from __future__ import annotations

from django.db.models import Count, Prefetch, Q, QuerySet
from django.utils import timezone

from subscriptions.models import SigningSecret, Subscription


def subscriptions_with_secrets(queryset: QuerySet[Subscription] | None = None) -> QuerySet:
    """Subscriptions with their subscriber and their valid secrets (for the secret hints)."""
    now = timezone.now()
    valid = SigningSecret.objects.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))
    queryset = Subscription.objects.all() if queryset is None else queryset
    return queryset.select_related("subscriber").prefetch_related(
        Prefetch("secrets", queryset=valid)
    )


def subscription_fresh(subscription: Subscription) -> Subscription:
    """The subscription as reads show it (its valid secrets loaded anew)."""
    return subscriptions_with_secrets().get(pk=subscription.pk)


# Active, but its latest attempts failed (the breaker disables it after a while).
FAILING = Q(state=Subscription.State.ACTIVE, consecutive_failures__gt=0)
HEALTHY = Q(state=Subscription.State.ACTIVE, consecutive_failures=0)
PAUSED = Q(state=Subscription.State.PAUSED)
DISABLED = Q(state=Subscription.State.DISABLED)


def subscription_health_counts() -> dict[str, int]:
    """How many subscriptions are failing, paused, disabled and healthy (one query)."""
    return Subscription.objects.aggregate(
        failing=Count("id", filter=FAILING),
        paused=Count("id", filter=PAUSED),
        disabled=Count("id", filter=DISABLED),
        healthy=Count("id", filter=HEALTHY),
    )


def subscriptions_needing_attention(limit: int = 10) -> list[Subscription]:
    """Failing, paused and disabled subscriptions, the longest failing or changed first."""
    return list(
        Subscription.objects.filter(FAILING | PAUSED | DISABLED)
        .select_related("subscriber")
        .order_by("state", "-consecutive_failures", "state_changed_at", "id")[:limit]
    )
