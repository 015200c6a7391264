"""GraphQL queries and mutations of subscriptions (secrets are never exposed, except the new
secret returned once by ``createSubscription``)."""

from __future__ import annotations

import graphene
from graphene.types.generic import GenericScalar
from graphene_django import DjangoObjectType

from accounts.graphql import require_role
from core.graphql import error
from subscriptions.models import Subscriber, Subscription
from subscriptions.services import subscription_create, subscription_set_state


class SubscriberNode(DjangoObjectType):
    class Meta:
        model = Subscriber
        name = "Subscriber"
        fields = ["id", "name", "contact_email", "active", "created_at"]


class SubscriptionNode(DjangoObjectType):
    filter = GenericScalar()
    # the names only: header values may be the endpoint's credentials (write-only in REST too)
    header_names = graphene.List(graphene.NonNull(graphene.String), required=True)
    event_types = graphene.List(graphene.NonNull(graphene.String), required=True)
    retry_schedule = graphene.List(graphene.NonNull(graphene.Int), required=True)

    class Meta:
        model = Subscription
        name = "Subscription"
        fields = [
            "id",
            "subscriber",
            "name",
            "url",
            "event_types",
            "filter",
            "state",
            "state_reason",
            "state_changed_at",
            "retry_schedule",
            "timeout_seconds",
            "rate_limit_per_second",
            "output_format",
            "ordered",
            "created_at",
            "updated_at",
        ]

    def resolve_header_names(self, info) -> list[str]:
        return sorted(self.headers or {})


def _subscription(id: str) -> Subscription:
    subscription = Subscription.objects.filter(pk=id).first() if str(id).isdigit() else None
    if subscription is None:
        raise error(f"No subscription {id}.", "NOT_FOUND")
    return subscription


class Query(graphene.ObjectType):
    subscriptions = graphene.List(
        graphene.NonNull(SubscriptionNode), required=True, state=graphene.String()
    )

    @require_role("reader")
    def resolve_subscriptions(root, info, state=None):
        queryset = Subscription.objects.select_related("subscriber")
        return queryset.filter(state=state) if state else queryset


class CreateSubscription(graphene.Mutation):
    """Create a subscription; its signing secret is in the answer and never shown again."""

    class Arguments:
        subscriber = graphene.String(required=True, description="Subscriber name (created if new).")
        url = graphene.String(required=True)
        event_types = graphene.List(graphene.NonNull(graphene.String), required=True)
        filter = GenericScalar()
        name = graphene.String()

    subscription = graphene.Field(SubscriptionNode, required=True)
    secret = graphene.String(required=True)

    @require_role("admin")
    def mutate(root, info, subscriber, url, event_types, filter=None, name=""):
        owner, _ = Subscriber.objects.get_or_create(name=subscriber)
        user = info.context.user
        created, secret = subscription_create(
            subscriber=owner,
            url=url,
            event_types=event_types,
            filter=filter,
            name=name or "",
            actor=user if getattr(user, "pk", None) else None,
        )
        return CreateSubscription(subscription=created, secret=secret)


def _state_mutation(state: str, description: str):
    class Arguments:
        id = graphene.ID(required=True)
        reason = graphene.String()

    @require_role("admin")
    def mutate(root, info, id, reason=""):
        subscription = _subscription(id)
        user = info.context.user
        subscription_set_state(
            subscription=subscription,
            state=state,
            reason=reason or "",
            actor=user if getattr(user, "pk", None) else None,
        )
        return {"subscription": subscription}

    return type(
        f"{state.title()}Subscription",
        (graphene.Mutation,),
        {
            "__doc__": description,
            "Arguments": Arguments,
            "subscription": graphene.Field(SubscriptionNode, required=True),
            "mutate": mutate,
        },
    )


PauseSubscription = _state_mutation(Subscription.State.PAUSED, "Pause a subscription.")
ResumeSubscription = _state_mutation(Subscription.State.ACTIVE, "Resume a subscription.")


class Mutation(graphene.ObjectType):
    create_subscription = CreateSubscription.Field()
    pause_subscription = PauseSubscription.Field()
    resume_subscription = ResumeSubscription.Field()
