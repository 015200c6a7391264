"""Rules CRUD (readers list, admins change) and the backtest action."""

from drf_spectacular.utils import extend_schema
from rest_framework import viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.permissions import ReadOrAdmin
from accounts.throttling import ReadRateThrottle
from core.problems import Unprocessable
from querylang import QueryError
from rules.api.serializers import (
    BacktestRequestSerializer,
    BacktestResultSerializer,
    RuleSerializer,
)
from rules.models import Rule
from rules.services import rule_backtest


class RuleViewSet(viewsets.ModelViewSet):
    queryset = Rule.objects.all()
    serializer_class = RuleSerializer
    permission_classes = [ReadOrAdmin]
    throttle_classes = [ReadRateThrottle]
    filterset_fields = ["enabled"]
    lookup_value_regex = r"\d+"

    @extend_schema(
        request=BacktestRequestSerializer,
        responses={200: BacktestResultSerializer},
        summary="Count the stored events of the last days this rule (or a draft) would match",
    )
    @action(detail=True, methods=["post"])
    def backtest(self, request: Request, pk=None) -> Response:
        rule = self.get_object()
        params = BacktestRequestSerializer(data=request.data)
        params.is_valid(raise_exception=True)
        conditions = params.validated_data.get("conditions", rule.conditions)
        try:
            result = rule_backtest(conditions=conditions, days=params.validated_data["days"])
        except QueryError as exc:
            raise Unprocessable(
                "The conditions do not compile.",
                extra={"errors": [{"pointer": "/conditions", "detail": str(exc)}]},
            ) from exc
        return Response(BacktestResultSerializer(result).data)
