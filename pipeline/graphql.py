"""GraphQL queries of the pipeline: its lag per partition and its statistics (readers)."""

from __future__ import annotations

from datetime import datetime

import graphene
from confluent_kafka import KafkaException

from accounts.graphql import require_role
from core.problems import DependencyUnavailable
from pipeline.lag import pipeline_lag, pipeline_stats


class PartitionLag(graphene.ObjectType):
    partition = graphene.Int(required=True)
    committed = graphene.BigInt(required=True, description="-1: nothing committed yet.")
    low_watermark = graphene.BigInt(required=True)
    high_watermark = graphene.BigInt(required=True)
    lag = graphene.BigInt(required=True)


class ConsumerLag(graphene.ObjectType):
    member = graphene.String(required=True)
    lag = graphene.BigInt(required=True)
    stalled = graphene.Boolean(required=True)
    idle_seconds = graphene.Float(required=True)
    checked_at = graphene.DateTime(required=True)


class PipelineLag(graphene.ObjectType):
    group = graphene.String(required=True)
    topic = graphene.String(required=True)
    lag = graphene.BigInt(required=True)
    partitions = graphene.List(graphene.NonNull(PartitionLag), required=True)
    consumers = graphene.List(graphene.NonNull(ConsumerLag), required=True)
    stalled = graphene.Boolean(required=True)
    checked_at = graphene.DateTime(required=True)


class PipelineBatch(graphene.ObjectType):
    at = graphene.DateTime(required=True)
    events = graphene.Int(required=True)
    quarantined = graphene.Int(required=True)
    deliveries = graphene.Int(required=True)
    duration_ms = graphene.Float(required=True)


class PipelineError(graphene.ObjectType):
    at = graphene.DateTime(required=True)
    error = graphene.String(required=True)


class ConsumerStats(graphene.ObjectType):
    member = graphene.String(required=True)
    started_at = graphene.DateTime(required=True)
    events_per_second = graphene.Float(required=True)
    events = graphene.BigInt(required=True)
    quarantined = graphene.BigInt(required=True)
    deliveries = graphene.BigInt(required=True)
    batches = graphene.BigInt(required=True)
    batches_last_minute = graphene.Int(required=True)
    failures = graphene.BigInt(required=True)
    batch_ms_mean = graphene.Float()
    batch_ms_max = graphene.Float()
    last_batch = graphene.Field(PipelineBatch)
    last_error = graphene.Field(PipelineError)


class PipelineStats(graphene.ObjectType):
    group = graphene.String(required=True)
    consumers = graphene.Int(required=True)
    events_per_second = graphene.Float(required=True)
    events = graphene.BigInt(required=True)
    quarantined = graphene.BigInt(required=True)
    deliveries = graphene.BigInt(required=True)
    batches = graphene.BigInt(required=True)
    failures = graphene.BigInt(required=True)
    batch_ms_mean = graphene.Float()
    batch_ms_max = graphene.Float()
    last_batch = graphene.Field(PipelineBatch)
    last_error = graphene.Field(PipelineError)
    per_consumer = graphene.List(graphene.NonNull(ConsumerStats), required=True)


def _from_iso(record: dict | None, *names: str) -> dict | None:
    if record is None:
        return None
    return {**record, **{name: datetime.fromisoformat(record[name]) for name in names}}


class Query(graphene.ObjectType):
    pipeline_lag = graphene.Field(
        PipelineLag,
        required=True,
        description="The pipeline group's lag per partition, from the Kafka admin API.",
    )
    pipeline_stats = graphene.Field(
        PipelineStats,
        required=True,
        description="Throughput, batch time, the last batch and errors of the live consumers.",
    )

    @require_role("reader")
    def resolve_pipeline_lag(root, info):
        try:
            lag = pipeline_lag()
        except KafkaException as exc:
            raise DependencyUnavailable() from exc
        return PipelineLag(
            **{
                **_from_iso(lag, "checked_at"),
                "partitions": [PartitionLag(**p) for p in lag["partitions"]],
                "consumers": [ConsumerLag(**_from_iso(c, "checked_at")) for c in lag["consumers"]],
            }
        )

    @require_role("reader")
    def resolve_pipeline_stats(root, info):
        stats = pipeline_stats()
        return PipelineStats(
            **_with_batches(stats),
            per_consumer=[
                ConsumerStats(**_with_batches(_from_iso(c, "started_at")))
                for c in stats["per_consumer"]
            ],
        )


def _with_batches(figures: dict) -> dict:
    """The figures with their last batch and last error as objects (times parsed)."""
    last_batch = _from_iso(figures["last_batch"], "at")
    last_error = _from_iso(figures["last_error"], "at")
    return {
        **{k: v for k, v in figures.items() if k != "per_consumer"},
        "last_batch": PipelineBatch(**last_batch) if last_batch else None,
        "last_error": PipelineError(**last_error) if last_error else None,
    }
