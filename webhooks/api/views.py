"""Deliveries: readers list and inspect them; admins retry one or replay the dead-letter queue."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import ReadOrAdmin
from accounts.throttling import ReadRateThrottle
from core.api import problems
from core.pagination import CursorPage
from subscriptions.api.serializers import (
    ResumeRequestSerializer,
    ResumeResultSerializer,
    SubscriptionSerializer,
)
from subscriptions.api.views import DETAIL_PROBLEMS
from subscriptions.models import Subscription
from subscriptions.selectors import subscription_fresh, subscriptions_with_secrets
from webhooks.api import schema  # noqa: F401 - registers the OpenAPI shape of a delivery detail
from webhooks.api.serializers import (
    DeliveryDetailSerializer,
    DeliverySerializer,
    ReplayRequestSerializer,
    ReplayResultSerializer,
)
from webhooks.models import Delivery
from webhooks.services.actions import (
    deliveries_replay,
    delivery_retry,
    subscription_resume,
    subscription_send_test,
)

READ_PROBLEMS = problems(s401="Not authenticated", s403="Role not allowed")
ADMIN_PROBLEMS = problems(s401="Not authenticated", s403="Needs the admin role")


class DeliveryPagination(CursorPage):
    """Newest first."""

    ordering = ("-created_at", "-id")


@extend_schema_view(
    list=extend_schema(
        summary="List deliveries, newest first",
        responses={
            200: DeliverySerializer(many=True),
            **READ_PROBLEMS,
            **problems(s400="Bad filter"),
        },
    ),
    retrieve=extend_schema(
        summary="One delivery with every attempt made",
        responses={
            200: DeliveryDetailSerializer,
            **READ_PROBLEMS,
            **problems(s404="No such delivery"),
        },
    ),
)
class DeliveryViewSet(viewsets.ReadOnlyModelViewSet):
    queryset = Delivery.objects.all()
    permission_classes = [ReadOrAdmin]
    throttle_classes = [ReadRateThrottle]
    pagination_class = DeliveryPagination
    filterset_fields = [
        "status",
        "subscription",
        "event_type",
        "event_id",
        "event_source",
        "is_test",
    ]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Delivery]:
        queryset = super().get_queryset()
        if self.action == "list":
            return queryset
        return queryset.prefetch_related("attempts_made")

    def get_serializer_class(self):
        return DeliverySerializer if self.action == "list" else DeliveryDetailSerializer

    @extend_schema(
        summary="Queue a delivery for another attempt now",
        description=(
            "Dead, retrying, held or cancelled deliveries only; the retry schedule starts over "
            "and the webhook-id stays the same. A held delivery is sent once its subscription "
            "is active."
        ),
        request=None,
        responses={
            202: DeliveryDetailSerializer,
            **ADMIN_PROBLEMS,
            **problems(s404="No such delivery", s409="Not retryable in its status"),
        },
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        delivery = delivery_retry(delivery=self.get_object(), actor=request.user)
        return Response(DeliveryDetailSerializer(delivery).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="Replay the dead-letter queue (or another retryable status)",
        description=(
            "Queues again every delivery in `status` that got there within `since` (e.g. `2h` "
            "or seconds), optionally of one subscription or event type. `dry_run` only counts "
            "them. Each replay is written to the audit log."
        ),
        request=ReplayRequestSerializer,
        responses={200: ReplayResultSerializer, **ADMIN_PROBLEMS, **problems(s400="Bad request")},
    )
    @action(detail=False, methods=["post"])
    def replay(self, request: Request) -> Response:
        params = ReplayRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        data = params.validated_data
        subscription = data.get("subscription")
        count = deliveries_replay(
            since=data["since"],
            status=data["status"],
            subscription_id=subscription.pk if subscription else None,
            event_type=data.get("event_type") or None,
            dry_run=data["dry_run"],
            actor=request.user,
        )
        return Response(ReplayResultSerializer({"count": count, "dry_run": data["dry_run"]}).data)


class SubscriptionDeliveryViewSet(viewsets.GenericViewSet):
    """The actions on a subscription that act on its deliveries (a test event, resuming with
    the held deliveries released), routed under ``/subscriptions/{id}/`` beside the
    subscriptions API's own: they belong to the package that owns deliveries."""

    queryset = Subscription.objects.all()
    serializer_class = SubscriptionSerializer
    permission_classes = [ReadOrAdmin]
    throttle_classes = [ReadRateThrottle]
    lookup_value_regex = r"\d+"

    def get_queryset(self) -> QuerySet[Subscription]:
        return subscriptions_with_secrets()

    @extend_schema(
        summary="Send a test event to the endpoint now",
        description=(
            "One attempt, whatever the subscription's state; never retried and not counted in "
            "its health. The answer is the test delivery with its status and attempt."
        ),
        request=None,
        responses={200: DeliveryDetailSerializer, **DETAIL_PROBLEMS},
    )
    @action(detail=True, methods=["post"])
    def test(self, request: Request, pk: str | None = None) -> Response:
        delivery = subscription_send_test(subscription=self.get_object(), actor=request.user)
        delivery = Delivery.objects.prefetch_related("attempts_made").get(pk=delivery.pk)
        return Response(DeliveryDetailSerializer(delivery).data)

    @extend_schema(
        summary="Resume sending, and optionally release the held deliveries",
        description=(
            "Deliveries created while the subscription was paused or disabled are held. With "
            '`{"release_held": true}` they are queued again now; otherwise they stay held '
            "(`held` counts them) and can be released by resuming again with it."
        ),
        request=ResumeRequestSerializer,
        responses={200: ResumeResultSerializer, **DETAIL_PROBLEMS},
    )
    @action(detail=True, methods=["post"])
    def resume(self, request: Request, pk: str | None = None) -> Response:
        subscription = self.get_object()
        params = ResumeRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        result = subscription_resume(
            subscription=subscription,
            release_held=params.validated_data["release_held"],
            actor=request.user,
        )
        body = {
            "subscription": subscription_fresh(subscription),
            "released": result.released,
            "held": result.held,
        }
        return Response(ResumeResultSerializer(body).data)
