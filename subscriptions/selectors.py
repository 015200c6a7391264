"""Reads of subscriptions as the API shows them."""

from __future__ import annotations

from django.db.models import Prefetch, Q, QuerySet
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
