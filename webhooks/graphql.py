"""GraphQL queries and mutations of deliveries."""

from __future__ import annotations

import graphene
from graphene_django import DjangoObjectType

from accounts.graphql import require_role
from core.graphql import error
from webhooks.models import Delivery
from webhooks.services.actions import delivery_retry


class DeliveryNode(DjangoObjectType):
    class Meta:
        model = Delivery
        name = "Delivery"
        fields = [
            "id",
            "event_id",
            "event_source",
            "event_type",
            "subscription",
            "status",
            "attempts",
            "next_attempt_at",
            "last_status_code",
            "last_error",
            "created_at",
            "updated_at",
            "delivered_at",
            "is_test",
        ]


class Query(graphene.ObjectType):
    deliveries = graphene.List(
        graphene.NonNull(DeliveryNode),
        required=True,
        status=graphene.String(),
        subscription=graphene.ID(),
        limit=graphene.Int(default_value=50),
    )

    @require_role("reader")
    def resolve_deliveries(root, info, status=None, subscription=None, limit=50):
        if not 1 <= limit <= 500:
            raise error("limit must be from 1 to 500.", "BAD_INPUT")
        queryset = Delivery.objects.select_related("subscription")
        if status:
            queryset = queryset.filter(status=status)
        if subscription:
            queryset = queryset.filter(subscription_id=subscription)
        return queryset[:limit]


class RetryDelivery(graphene.Mutation):
    """Queue a dead, retrying, held or cancelled delivery for another attempt now."""

    class Arguments:
        id = graphene.ID(required=True)

    delivery = graphene.Field(DeliveryNode, required=True)

    @require_role("admin")
    def mutate(root, info, id):
        delivery = Delivery.objects.filter(pk=id).first() if str(id).isdigit() else None
        if delivery is None:
            raise error(f"No delivery {id}.", "NOT_FOUND")
        user = info.context.user
        actor = user if getattr(user, "pk", None) else None
        return RetryDelivery(delivery=delivery_retry(delivery=delivery, actor=actor))


class Mutation(graphene.ObjectType):
    retry_delivery = RetryDelivery.Field()
