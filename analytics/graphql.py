"""GraphQL queries of analytics: the REST API's answers, with its parameters and checks."""

from __future__ import annotations

from typing import Any

import graphene
from rest_framework import serializers

from accounts.graphql import require_role
from analytics import selectors
from analytics.api.serializers import (
    FunnelQuerySerializer,
    LimitQuerySerializer,
    StreamFilterSerializer,
    SummaryQuerySerializer,
    TimeseriesQuerySerializer,
    UserActivityQuerySerializer,
    checked_query,
)
from analytics.live.feed import EventFeed, StreamRefused
from core.graphql import error
from core.problems import flatten_errors
from events.graphql import Event


class TimeWindow(graphene.ObjectType):
    start = graphene.DateTime(required=True)
    end = graphene.DateTime(required=True)
    minutes = graphene.Int(required=True)


class AggregatedMetrics(graphene.ObjectType):
    total_amount = graphene.Float(required=True)
    event_count = graphene.Int(required=True)
    time_window = graphene.Field(TimeWindow, required=True)


class Window(graphene.ObjectType):
    since = graphene.DateTime(required=True)
    until = graphene.DateTime(required=True)


class KeyCount(graphene.ObjectType):
    key = graphene.String(required=True)
    count = graphene.Int(required=True)


class DeliverySummary(graphene.ObjectType):
    total = graphene.Int(required=True)
    succeeded = graphene.Int(required=True)
    dead = graphene.Int(required=True)
    success_rate = graphene.Float()
    latency_ms_p50 = graphene.Float()
    latency_ms_p95 = graphene.Float()


class Summary(graphene.ObjectType):
    window = graphene.Field(Window, required=True)
    total = graphene.Int(required=True)
    by_type = graphene.List(graphene.NonNull(KeyCount), required=True)
    by_source = graphene.List(graphene.NonNull(KeyCount), required=True)
    by_severity = graphene.List(graphene.NonNull(KeyCount), required=True)
    errors = graphene.Int(required=True)
    error_share = graphene.Float(required=True)
    field = graphene.String(required=True)
    sum = graphene.Float(required=True)
    average = graphene.Float()
    deliveries = graphene.Field(DeliverySummary, required=True)


class Point(graphene.ObjectType):
    start = graphene.DateTime(required=True)
    count = graphene.Int(required=True)
    sum = graphene.Float(required=True)


class Timeseries(graphene.ObjectType):
    window = graphene.Field(Window, required=True)
    bucket = graphene.String(required=True)
    points = graphene.List(graphene.NonNull(Point), required=True)


class TopError(graphene.ObjectType):
    type = graphene.String(required=True)
    source = graphene.String(required=True)
    code = graphene.String()
    count = graphene.Int(required=True)
    first_seen = graphene.DateTime(required=True)
    last_seen = graphene.DateTime(required=True)


class TypeCount(graphene.ObjectType):
    type = graphene.String(required=True)
    count = graphene.Int(required=True)


class UserActivity(graphene.ObjectType):
    subject = graphene.String(required=True)
    count = graphene.Int(required=True)
    types = graphene.List(graphene.NonNull(TypeCount), required=True)
    first_seen = graphene.DateTime(required=True)
    last_seen = graphene.DateTime(required=True)


class FunnelStep(graphene.ObjectType):
    step = graphene.String(required=True)
    subjects = graphene.Int(required=True)
    conversion = graphene.Float()


class Funnel(graphene.ObjectType):
    window = graphene.Field(Window, required=True)
    steps = graphene.List(graphene.NonNull(FunnelStep), required=True)


WINDOW_ARGUMENTS = {
    "since": graphene.String(description="The last 15m, 24h, 7d... (default 24h)."),
    "from_": graphene.DateTime(name="from", description="Start (with until, instead of since)."),
    "until": graphene.DateTime(description="End of the window; default now."),
}
FILTER_ARGUMENTS = {
    "type": graphene.String(description="Event types, comma-separated; order.* for a prefix."),
    "source": graphene.String(),
    "subject": graphene.String(),
    "filter": graphene.JSONString(description="A condition in MongoDB's query language."),
}


def _checked(serializer_class: type[serializers.Serializer], arguments: dict[str, Any]):
    """The arguments checked as the REST API checks its query: BAD_INPUT naming the fields."""
    try:
        return checked_query(serializer_class, arguments)
    except serializers.ValidationError as exc:
        raise error(
            "The arguments are invalid.", "BAD_INPUT", errors=flatten_errors(exc.detail)
        ) from exc


class Query(graphene.ObjectType):
    aggregated_metrics = graphene.Field(
        AggregatedMetrics,
        minutes=graphene.Int(default_value=60),
        description="Events and the sum of their amount over the last minutes (rollups).",
    )
    analytics_summary = graphene.Field(
        Summary,
        field=graphene.String(default_value="amount"),
        **WINDOW_ARGUMENTS,
        description="Counts by type, source and severity band, amount, deliveries.",
    )
    analytics_timeseries = graphene.Field(
        Timeseries,
        bucket=graphene.String(default_value="1h"),
        **WINDOW_ARGUMENTS,
        **FILTER_ARGUMENTS,
        description="Counts and amount sums per bucket (1m, 5m, 1h, 1d).",
    )
    analytics_top_errors = graphene.List(
        graphene.NonNull(TopError),
        limit=graphene.Int(default_value=10),
        **WINDOW_ARGUMENTS,
        description="The most frequent error events by type, source and code.",
    )
    analytics_user_activity = graphene.List(
        graphene.NonNull(UserActivity),
        limit=graphene.Int(default_value=10),
        subject=graphene.String(),
        **WINDOW_ARGUMENTS,
        description="Per subject: events, types, first and last seen.",
    )
    analytics_funnel = graphene.Field(
        Funnel,
        steps=graphene.List(graphene.NonNull(graphene.String), required=True),
        **WINDOW_ARGUMENTS,
        description="Subjects reaching each step in order, and the conversion.",
    )

    @require_role("reader")
    def resolve_aggregated_metrics(root, info, minutes: int):
        if not 1 <= minutes <= 7 * 24 * 60:
            raise error("minutes must be from 1 to 10080.", "BAD_INPUT")
        result = selectors.events_per_minute(minutes)
        return AggregatedMetrics(
            total_amount=result["total_amount"],
            event_count=result["event_count"],
            time_window=TimeWindow(start=result["start"], end=result["end"], minutes=minutes),
        )

    @require_role("reader")
    def resolve_analytics_summary(root, info, **arguments):
        query = _checked(SummaryQuerySerializer, arguments).validated_data
        return selectors.summary(query["window"], field=query["field"])

    @require_role("reader")
    def resolve_analytics_timeseries(root, info, **arguments):
        serializer = _checked(TimeseriesQuerySerializer, arguments)
        query = serializer.validated_data
        return selectors.timeseries(query["window"], query["bucket"], serializer.filters())

    @require_role("reader")
    def resolve_analytics_top_errors(root, info, **arguments):
        query = _checked(LimitQuerySerializer, arguments).validated_data
        return selectors.top_errors(query["window"], limit=query["limit"])

    @require_role("reader")
    def resolve_analytics_user_activity(root, info, **arguments):
        query = _checked(UserActivityQuerySerializer, arguments).validated_data
        return selectors.user_activity(
            query["window"], subject=query.get("subject"), limit=query["limit"]
        )

    @require_role("reader")
    def resolve_analytics_funnel(root, info, steps, **arguments):
        query = _checked(FunnelQuerySerializer, {**arguments, "steps": ",".join(steps)})
        return selectors.funnel(query.validated_data["window"], query.validated_data["steps"])


class StreamedEvent(graphene.ObjectType):
    position = graphene.String(
        required=True, description="Give it back as lastEventId to resume after this event."
    )
    event = graphene.Field(Event, required=True)


class Streams(graphene.ObjectType):
    """The schema's root subscription type (``Subscription`` is the webhook subscription's
    type)."""

    event_stream = graphene.Field(
        StreamedEvent,
        required=True,
        types=graphene.List(graphene.NonNull(graphene.String)),
        source=graphene.String(),
        subject=graphene.String(),
        filter=graphene.JSONString(description="A condition in MongoDB's query language."),
        last_event_id=graphene.String(description="Resume after this position."),
        description="Every stored event that passes the filters, as MongoDB stores them.",
    )

    async def subscribe_event_stream(root, info, last_event_id=None, types=None, **arguments):
        """Over graphql-transport-ws (``/graphql`` on the ASGI server); the connection was
        authenticated with the reader role or above."""
        if types:
            arguments["type"] = ",".join(types)
        serializer = _checked(StreamFilterSerializer, arguments)
        feed = EventFeed(serializer.filters(), last_event_id)
        try:
            await feed.open()
        except StreamRefused as refused:
            raise error(refused.detail, refused.code.upper().replace("-", "_")) from refused
        return _streamed(feed)


async def _streamed(feed: EventFeed):
    try:
        while True:
            change = await feed.next()
            if change is not None:
                yield StreamedEvent(
                    position=change.position, event=Event.from_document(change.document)
                )
    finally:
        await feed.close()
