"""The gRPC ``AnalyticsService`` and ``MetricsService`` (protos/analytics.proto): the REST
API's analytics answers, their checks and roles (reader), the rollups' export, and two
server streams. Served beside ``EventService`` by ``manage.py grpc_server``."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
from rest_framework import serializers

from analytics import export, selectors
from analytics.api.serializers import (
    FunnelQuerySerializer,
    LimitQuerySerializer,
    StreamFilterSerializer,
    SummaryQuerySerializer,
    TimeseriesQuerySerializer,
    UserActivityQuerySerializer,
    WindowQuerySerializer,
    checked_query,
)
from analytics.grpc_api import analytics_pb2 as pb
from analytics.grpc_api import analytics_pb2_grpc as pb_grpc
from analytics.rollups import PERIODS, period_start
from analytics.windows import Window
from core.problems import flatten_errors
from events.grpc_api.server import Refused, guarded


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _query(serializer_class, window: pb.Window | None = None, **arguments: Any):
    if window is not None:
        arguments.update(since=window.since, from_=getattr(window, "from"), until=window.until)
    try:
        return checked_query(serializer_class, arguments)
    except serializers.ValidationError as exc:
        errors = flatten_errors(exc.detail)
        raise Refused(
            grpc.StatusCode.INVALID_ARGUMENT,
            "; ".join(f"{e['pointer']}: {e['detail']}" for e in errors),
            errors=json.dumps(errors),
        ) from exc


def _key_counts(items: list[dict[str, Any]]) -> list[pb.KeyCount]:
    return [pb.KeyCount(key=i["key"], count=i["count"]) for i in items]


def summary_message(answer: dict[str, Any]) -> pb.Summary:
    deliveries = answer["deliveries"]
    return pb.Summary(
        since=_iso(answer["window"]["since"]),
        until=_iso(answer["window"]["until"]),
        total=answer["total"],
        by_type=_key_counts(answer["by_type"]),
        by_source=_key_counts(answer["by_source"]),
        by_severity=_key_counts(answer["by_severity"]),
        errors=answer["errors"],
        error_share=answer["error_share"],
        field=answer["field"],
        sum=answer["sum"],
        average=answer["average"],
        deliveries=pb.DeliverySummary(**deliveries),
    )


class AnalyticsService(pb_grpc.AnalyticsServiceServicer):
    @guarded("reader")
    def GetSummary(self, request: pb.SummaryRequest, context, user) -> pb.Summary:
        query = _query(SummaryQuerySerializer, request.window, field=request.field)
        data = query.validated_data
        return summary_message(selectors.summary(data["window"], field=data["field"]))

    @guarded("reader")
    def GetTimeseries(self, request: pb.TimeseriesRequest, context, user) -> pb.Timeseries:
        query = _query(
            TimeseriesQuerySerializer,
            request.window,
            bucket=request.bucket,
            type=request.type,
            source=request.source,
            subject=request.subject,
            filter=request.filter,
        )
        data = query.validated_data
        answer = selectors.timeseries(data["window"], data["bucket"], query.filters())
        return pb.Timeseries(
            since=_iso(answer["window"]["since"]),
            until=_iso(answer["window"]["until"]),
            bucket=answer["bucket"],
            points=[
                pb.Point(start=_iso(p["start"]), count=p["count"], sum=p["sum"])
                for p in answer["points"]
            ],
        )

    @guarded("reader")
    def GetTopErrors(self, request: pb.TopErrorsRequest, context, user) -> pb.TopErrors:
        data = _query(
            LimitQuerySerializer, request.window, limit=request.limit or None
        ).validated_data
        rows = selectors.top_errors(data["window"], limit=data["limit"])
        return pb.TopErrors(
            errors=[
                pb.TopError(
                    type=r["type"],
                    source=r["source"],
                    code=r["code"],
                    count=r["count"],
                    first_seen=_iso(r["first_seen"]),
                    last_seen=_iso(r["last_seen"]),
                )
                for r in rows
            ]
        )

    @guarded("reader")
    def GetUserActivity(self, request: pb.UserActivityRequest, context, user):
        data = _query(
            UserActivityQuerySerializer,
            request.window,
            limit=request.limit or None,
            subject=request.subject,
        ).validated_data
        rows = selectors.user_activity(
            data["window"], subject=data.get("subject"), limit=data["limit"]
        )
        return pb.UserActivity(
            subjects=[
                pb.Activity(
                    subject=r["subject"],
                    count=r["count"],
                    types=[pb.TypeCount(type=t["type"], count=t["count"]) for t in r["types"]],
                    first_seen=_iso(r["first_seen"]),
                    last_seen=_iso(r["last_seen"]),
                )
                for r in rows
            ]
        )

    @guarded("reader")
    def GetFunnel(self, request: pb.FunnelRequest, context, user) -> pb.Funnel:
        data = _query(
            FunnelQuerySerializer, request.window, steps=",".join(request.steps)
        ).validated_data
        answer = selectors.funnel(data["window"], data["steps"])
        return pb.Funnel(
            since=_iso(answer["window"]["since"]),
            until=_iso(answer["window"]["until"]),
            steps=[pb.FunnelStep(**step) for step in answer["steps"]],
        )

    @guarded("reader")
    def GetRealTimeAnalytics(self, request: pb.RealTimeRequest, context, user):
        interval = request.interval_seconds or 5
        if not 1 <= interval <= 300:
            raise Refused(
                grpc.StatusCode.INVALID_ARGUMENT, "interval_seconds must be from 1 to 300."
            )
        since = _query(WindowQuerySerializer, since=request.since or "5m").validated_data
        span = since["window"].until - since["window"].since
        return self._updates(context, span, interval)

    def _updates(self, context, span: timedelta, interval: int):
        while context.is_active():
            yield summary_message(selectors.summary(Window.last(span)))
            time.sleep(interval)

    @guarded("reader")
    def StreamMetrics(self, request: pb.MetricsRequest, context, user):
        filters = _query(StreamFilterSerializer, type=request.type, source=request.source).filters()
        minute = period_start(datetime.now(tz=UTC), "1m")
        if request.after:
            try:
                after = datetime.fromisoformat(request.after.replace("Z", "+00:00"))
            except ValueError as exc:
                raise Refused(
                    grpc.StatusCode.INVALID_ARGUMENT, "after must be an ISO 8601 minute."
                ) from exc
            minute = period_start(after, "1m") + timedelta(minutes=1)
        return self._minutes(context, minute, filters)

    def _minutes(self, context, minute: datetime, filters):
        from django.conf import settings

        delay = timedelta(minutes=1, seconds=settings.STREAM_METRICS_DELAY_SECONDS)
        while context.is_active():
            if datetime.now(tz=UTC) < minute + delay:
                time.sleep(0.5)
                continue
            metrics = export.minute_metrics(minute, filters)
            minute += timedelta(minutes=1)
            yield pb.MinuteMetrics(
                minute=metrics["minute"],
                total=metrics["total"],
                errors=metrics["errors"],
                amount_sum=metrics["amount_sum"],
                by_type=_key_counts(metrics["by_type"]),
            )


FORMATS = {
    "prometheus": "text/plain; version=0.0.4; charset=utf-8",
    "json": "application/json",
    "csv": "text/csv",
}


class MetricsService(pb_grpc.MetricsServiceServicer):
    @guarded("reader")
    def Export(self, request: pb.ExportRequest, context, user) -> pb.ExportReply:
        kind = request.format or "prometheus"
        period = request.period or "1m"
        if kind not in FORMATS or period not in PERIODS:
            raise Refused(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"format is one of {', '.join(FORMATS)}; period one of {', '.join(PERIODS)}.",
            )
        window = request.window
        if not (window.since or getattr(window, "from")):
            window = pb.Window(since="1h", until=window.until)
        data = _query(WindowQuerySerializer, window).validated_data
        filters = _query(StreamFilterSerializer, type=request.type, source=request.source)
        rows = export.rollup_rows(data["window"], period, filters.filters())
        return pb.ExportReply(content_type=FORMATS[kind], body=export.render(rows, kind))


def add_to_server(server: grpc.Server) -> None:
    pb_grpc.add_AnalyticsServiceServicer_to_server(AnalyticsService(), server)
    pb_grpc.add_MetricsServiceServicer_to_server(MetricsService(), server)
