"""REST views of analytics: summary, time series, top errors, user activity, funnels and the
rollups' export; JSON, or CSV with ``?format=csv`` or ``Accept: text/csv``."""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_csv.renderers import CSVRenderer

from accounts.permissions import IsReader
from accounts.throttling import ReadRateThrottle
from analytics import selectors
from analytics.api.serializers import (
    FunnelQuerySerializer,
    FunnelSerializer,
    LimitQuerySerializer,
    SummaryQuerySerializer,
    SummarySerializer,
    TimeseriesQuerySerializer,
    TimeseriesSerializer,
    TopErrorSerializer,
    UserActivityQuerySerializer,
    UserActivitySerializer,
)
from core.api import problems

PROBLEMS = problems(
    s400="Invalid parameters (errors name them)",
    s401="Not authenticated",
    s403="Role not allowed",
    s422="Well formed parameters that break a rule (since with from, a window too long, too "
    "many buckets, a filter that is not a query, fewer than two funnel steps)",
    s503="MongoDB or PostgreSQL unavailable (Retry-After)",
)


class AnalyticsCSVRenderer(CSVRenderer):
    """CSV of a view's rows (``csv_rows``), one line per row; no rows is the header line alone
    (an empty body would lose its Content-Type: DRF drops it for empty content)."""

    format = "csv"

    def render(self, data, media_type=None, renderer_context=None, writer_opts=None):
        if data == [] and renderer_context and renderer_context.get("view") is not None:
            view = renderer_context["view"]
            header = getattr(view, "csv_header", lambda: [])()
            return ",".join(header).encode() + b"\r\n"
        return super().render(data, media_type, renderer_context, writer_opts)


def _documented(name: str, summary: str, query, answer, *, many: bool = False) -> Any:
    csv = OpenApiResponse(
        OpenApiTypes.STR, description="The answer as CSV rows (?format=csv or Accept: text/csv)."
    )
    return extend_schema(
        operation_id=f"analytics_{name}",
        summary=summary,
        parameters=[query],
        responses={
            (200, "application/json"): answer(many=many),
            (200, "text/csv"): csv,
            **PROBLEMS,
        },
    )


class AnalyticsView(APIView):
    """One analytics answer: validate the query, compute, answer JSON or CSV rows. Errors are
    problem+json whatever the format asked."""

    permission_classes = [IsReader]
    throttle_classes = [ReadRateThrottle]
    renderer_classes = [JSONRenderer, AnalyticsCSVRenderer]
    query_serializer: type
    answer_serializer: type
    many = False

    def compute(self, query: dict[str, Any], serializer) -> Any:
        raise NotImplementedError

    def csv_rows(self, data: Any) -> list[dict[str, Any]]:
        return data if isinstance(data, list) else [data]

    def csv_header(self) -> list[str]:
        """The columns of an answer with no rows: the answer's fields."""
        return sorted(self.answer_serializer().fields)

    def get(self, request: Request) -> Response:
        # a plain dict: DRF reads "" in a QueryDict as "not given", the schema calls it invalid
        params = request.query_params.dict()
        params.pop("format", None)
        query = self.query_serializer(data=params)
        query.is_valid(raise_exception=True)
        result = self.compute(query.validated_data, query)
        data = self.answer_serializer(result, many=self.many).data
        if isinstance(request.accepted_renderer, AnalyticsCSVRenderer):
            return Response(self.csv_rows(data))
        return Response(data)

    def finalize_response(self, request, response, *args, **kwargs):
        response = super().finalize_response(request, response, *args, **kwargs)
        if response.status_code >= 400:
            response.accepted_renderer = JSONRenderer()
            response.accepted_media_type = response.content_type or "application/json"
        return response


def _window_columns(data: dict[str, Any]) -> dict[str, Any]:
    return {"since": data["window"]["since"], "until": data["window"]["until"]}


class SummaryView(AnalyticsView):
    """Counts by event type, source and severity band (info 1-3, warning 4-6, error 7-8,
    critical 9-10, none), the error share, the sum and average of a numeric data field, and
    the deliveries' success rate and latency, for the last ``since`` or ``from`` to ``until``."""

    query_serializer = SummaryQuerySerializer
    answer_serializer = SummarySerializer

    @_documented(
        "summary",
        "Counts by type, source and severity band, error share, amount, deliveries",
        SummaryQuerySerializer,
        SummarySerializer,
    )
    def get(self, request: Request) -> Response:
        return super().get(request)

    def compute(self, query, serializer):
        return selectors.summary(query["window"], field=query["field"])

    def csv_rows(self, data):
        rows = [
            {"dimension": dimension, "key": item["key"], "count": item["count"]}
            for dimension in ("type", "source", "severity")
            for item in data[f"by_{dimension}"]
        ]
        rows += [{"dimension": "total", "key": "", "count": data["total"]}]
        rows += [{"dimension": "errors", "key": "", "count": data["errors"]}]
        return [{**_window_columns(data), **row} for row in rows]


class TimeseriesView(AnalyticsView):
    """Counts and amount sums per bucket; the window widens to whole buckets, and buckets
    without events are there with zeros. Filters: types (``order.*`` for a prefix), source,
    subject, and a condition on the stored event in MongoDB's query language."""

    query_serializer = TimeseriesQuerySerializer
    answer_serializer = TimeseriesSerializer

    @_documented(
        "timeseries",
        "Counts and amount sums per bucket (1m, 5m, 1h, 1d), filtered",
        TimeseriesQuerySerializer,
        TimeseriesSerializer,
    )
    def get(self, request: Request) -> Response:
        return super().get(request)

    def compute(self, query, serializer):
        return selectors.timeseries(query["window"], query["bucket"], serializer.filters())

    def csv_rows(self, data):
        return [{"bucket": data["bucket"], **point} for point in data["points"]]


class TopErrorsView(AnalyticsView):
    """The most frequent error events (severity 7 and above), grouped by type, source and
    error code (``data.error_code``, else ``data.code``), with first and last seen."""

    query_serializer = LimitQuerySerializer
    answer_serializer = TopErrorSerializer
    many = True

    @_documented(
        "top_errors",
        "The most frequent error events by type, source and error code",
        LimitQuerySerializer,
        TopErrorSerializer,
        many=True,
    )
    def get(self, request: Request) -> Response:
        return super().get(request)

    def compute(self, query, serializer):
        return selectors.top_errors(query["window"], limit=query["limit"])


class UserActivityView(AnalyticsView):
    """Per subject (user): events, events per type, first and last seen; one subject or the
    ``limit`` most active."""

    query_serializer = UserActivityQuerySerializer
    answer_serializer = UserActivitySerializer
    many = True

    @_documented(
        "user_activity",
        "Per subject: events, their types, first and last seen",
        UserActivityQuerySerializer,
        UserActivitySerializer,
        many=True,
    )
    def get(self, request: Request) -> Response:
        return super().get(request)

    def compute(self, query, serializer):
        return selectors.user_activity(
            query["window"], subject=query.get("subject"), limit=query["limit"]
        )

    def csv_rows(self, data):
        return [
            {
                "subject": row["subject"],
                "count": row["count"],
                "first_seen": row["first_seen"],
                "last_seen": row["last_seen"],
                "types": " ".join(f"{t['type']}={t['count']}" for t in row["types"]),
            }
            for row in data
        ]


class FunnelView(AnalyticsView):
    """How many subjects reached each step in order (an event of each step after one of the
    step before, by event time, within the window), and the conversion between steps."""

    query_serializer = FunnelQuerySerializer
    answer_serializer = FunnelSerializer

    @_documented(
        "funnel",
        "Subjects reaching each step in order, and the conversion between steps",
        FunnelQuerySerializer,
        FunnelSerializer,
    )
    def get(self, request: Request) -> Response:
        return super().get(request)

    def compute(self, query, serializer):
        return selectors.funnel(query["window"], query["steps"])

    def csv_rows(self, data):
        return [{**_window_columns(data), **step} for step in data["steps"]]
