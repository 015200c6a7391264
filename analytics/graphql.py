"""GraphQL queries of analytics."""

import graphene

from accounts.graphql import require_role
from analytics.selectors import metrics_window
from core.graphql import error


class TimeWindow(graphene.ObjectType):
    start = graphene.DateTime(required=True)
    end = graphene.DateTime(required=True)
    minutes = graphene.Int(required=True)


class AggregatedMetrics(graphene.ObjectType):
    total_amount = graphene.Float(required=True)
    event_count = graphene.Int(required=True)
    time_window = graphene.Field(TimeWindow, required=True)


class Query(graphene.ObjectType):
    aggregated_metrics = graphene.Field(
        AggregatedMetrics,
        minutes=graphene.Int(default_value=60),
        description="Events and the sum of their amount over the last minutes.",
    )

    @require_role("reader")
    def resolve_aggregated_metrics(root, info, minutes: int):
        if not 1 <= minutes <= 7 * 24 * 60:
            raise error("minutes must be from 1 to 10080.", "BAD_INPUT")
        result = metrics_window(minutes=minutes)
        return AggregatedMetrics(
            total_amount=result["total_amount"],
            event_count=result["event_count"],
            time_window=TimeWindow(start=result["start"], end=result["end"], minutes=minutes),
        )
