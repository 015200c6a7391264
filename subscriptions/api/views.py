"""Subscribers and subscriptions: readers list them, admins change them and run the operator
actions (test event, secret rotation, pause, resume, disable), each through a service."""

from __future__ import annotations

from datetime import timedelta

from django.db.models import ProtectedError, QuerySet
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import ReadOrAdmin
from accounts.throttling import ReadRateThrottle
from core.api import problems
from core.problems import ProblemError
from subscriptions.api.serializers import (
    RotateSecretRequestSerializer,
    RotateSecretResultSerializer,
    SecretHintSerializer,
    StateChangeSerializer,
    SubscriberSerializer,
    SubscriptionCreatedSerializer,
    SubscriptionSerializer,
)
from subscriptions.models import Subscriber, Subscription
from subscriptions.selectors import subscription_fresh, subscriptions_with_secrets
from subscriptions.services import (
    subscription_create,
    subscription_rotate_secret,
    subscription_set_state,
)

READ_PROBLEMS = problems(s401="Not authenticated", s403="Role not allowed")
ADMIN_PROBLEMS = problems(s401="Not authenticated", s403="Needs the admin role")
WRITE_PROBLEMS = {
    **ADMIN_PROBLEMS,
    **problems(
        s400="Invalid fields (errors name JSON pointers)",
        s422="Refused by the subscription's rules: URL (SSRF guard), patterns, filter, headers",
    ),
}
DETAIL_PROBLEMS = {**ADMIN_PROBLEMS, **problems(s404="No such subscription")}


class InUse(ProblemError):
    """Deleting would drop delivery history (deliveries protect their subscription)."""

    status_code = status.HTTP_409_CONFLICT
    default_code = "in-use"
    title = "Still in use"


def _crud_schema(noun: str, serializer, *, create_serializer=None) -> dict:
    """``extend_schema_view`` arguments for a configuration ModelViewSet."""
    return {
        "list": extend_schema(
            summary=f"List {noun}s", responses={200: serializer(many=True), **READ_PROBLEMS}
        ),
        "retrieve": extend_schema(
            summary=f"One {noun}",
            responses={200: serializer, **READ_PROBLEMS, **problems(s404=f"No such {noun}")},
        ),
        "create": extend_schema(
            summary=f"Create a {noun}",
            request=serializer,
            responses={201: create_serializer or serializer, **WRITE_PROBLEMS},
        ),
        "update": extend_schema(
            summary=f"Replace a {noun}",
            responses={200: serializer, **WRITE_PROBLEMS, **problems(s404=f"No such {noun}")},
        ),
        "partial_update": extend_schema(
            summary=f"Change a {noun}",
            responses={200: serializer, **WRITE_PROBLEMS, **problems(s404=f"No such {noun}")},
        ),
        "destroy": extend_schema(
            summary=f"Delete a {noun}",
            responses={
                204: None,
                **ADMIN_PROBLEMS,
                **problems(s404=f"No such {noun}", s409="It has deliveries: disable it instead"),
            },
        ),
    }


class _ConfigurationViewSet(viewsets.ModelViewSet):
    permission_classes = [ReadOrAdmin]
    throttle_classes = [ReadRateThrottle]
    lookup_value_regex = r"\d+"

    def perform_destroy(self, instance) -> None:
        try:
            instance.delete()
        except ProtectedError as exc:
            raise InUse(
                f"{instance} has deliveries, which are kept for their history; "
                "disable or pause the subscription instead."
            ) from exc


@extend_schema_view(**_crud_schema("subscriber", SubscriberSerializer))
class SubscriberViewSet(_ConfigurationViewSet):
    queryset = Subscriber.objects.all()
    serializer_class = SubscriberSerializer
    filterset_fields = ["active", "name"]


@extend_schema_view(
    **_crud_schema(
        "subscription", SubscriptionSerializer, create_serializer=SubscriptionCreatedSerializer
    )
)
class SubscriptionViewSet(_ConfigurationViewSet):
    queryset = Subscription.objects.all()
    serializer_class = SubscriptionSerializer
    filterset_fields = ["state", "subscriber", "ordered", "output_format"]

    def get_queryset(self) -> QuerySet[Subscription]:
        return subscriptions_with_secrets(super().get_queryset())

    def create(self, request: Request, *args, **kwargs) -> Response:
        """Create through ``subscription_create``: the answer holds the secret, once."""
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        subscription, secret = subscription_create(actor=request.user, **serializer.validated_data)
        body = {**SubscriptionSerializer(self._fresh(subscription)).data, "secret": secret}
        return Response(body, status=status.HTTP_201_CREATED)

    def _fresh(self, subscription: Subscription) -> Subscription:
        return subscription_fresh(subscription)

    @extend_schema(
        summary="Add a new signing secret (shown once)",
        description=(
            "The current secrets keep signing for `overlap` (default from settings), so "
            "receivers can switch without losing a message."
        ),
        request=RotateSecretRequestSerializer,
        responses={
            200: RotateSecretResultSerializer,
            **DETAIL_PROBLEMS,
            **problems(s400="Invalid overlap"),
        },
    )
    @action(detail=True, methods=["post"], url_path="rotate-secret")
    def rotate_secret(self, request: Request, pk: str | None = None) -> Response:
        subscription = self.get_object()
        params = RotateSecretRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        overlap: timedelta | None = params.validated_data.get("overlap")
        secret = subscription_rotate_secret(
            subscription=subscription, actor=request.user, overlap=overlap
        )
        hints = SecretHintSerializer(self._fresh(subscription).secrets.all(), many=True).data
        return Response({"secret": secret, "secret_hints": hints})

    @extend_schema(
        summary="Pause: new deliveries are held until it is resumed",
        request=StateChangeSerializer,
        responses={200: SubscriptionSerializer, **DETAIL_PROBLEMS},
    )
    @action(detail=True, methods=["post"])
    def pause(self, request: Request, pk: str | None = None) -> Response:
        return self._set_state(request, Subscription.State.PAUSED, "paused")

    @extend_schema(
        summary="Disable: new deliveries are held until it is resumed",
        request=StateChangeSerializer,
        responses={200: SubscriptionSerializer, **DETAIL_PROBLEMS},
    )
    @action(detail=True, methods=["post"])
    def disable(self, request: Request, pk: str | None = None) -> Response:
        return self._set_state(request, Subscription.State.DISABLED, "disabled")

    def _set_state(self, request: Request, state: str, verb: str) -> Response:
        subscription = self.get_object()
        params = StateChangeSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        subscription_set_state(
            subscription=subscription,
            state=state,
            reason=params.validated_data.get("reason") or f"{verb} by {request.user}",
            actor=request.user,
        )
        return Response(SubscriptionSerializer(self._fresh(subscription)).data)
