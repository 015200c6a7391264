"""The shapes of the pipeline's lag and statistics, as REST answers them."""

from __future__ import annotations

from rest_framework import serializers


class PartitionLagSerializer(serializers.Serializer):
    partition = serializers.IntegerField()
    committed = serializers.IntegerField(help_text="The group's committed offset; -1: none yet.")
    low_watermark = serializers.IntegerField()
    high_watermark = serializers.IntegerField()
    lag = serializers.IntegerField(help_text="Messages past the committed offset.")


class ConsumerLagSerializer(serializers.Serializer):
    member = serializers.CharField()
    lag = serializers.IntegerField(help_text="Messages past its position, at its last check.")
    stalled = serializers.BooleanField()
    idle_seconds = serializers.FloatField()
    checked_at = serializers.DateTimeField()


class PipelineLagSerializer(serializers.Serializer):
    group = serializers.CharField()
    topic = serializers.CharField()
    lag = serializers.IntegerField(help_text="All partitions' lag.")
    partitions = PartitionLagSerializer(many=True)
    consumers = ConsumerLagSerializer(many=True, help_text="Live consumers' own reports.")
    stalled = serializers.BooleanField()
    checked_at = serializers.DateTimeField()


class BatchSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    events = serializers.IntegerField()
    quarantined = serializers.IntegerField()
    deliveries = serializers.IntegerField()
    duration_ms = serializers.FloatField()


class ErrorSerializer(serializers.Serializer):
    at = serializers.DateTimeField()
    error = serializers.CharField()


class ConsumerStatsSerializer(serializers.Serializer):
    member = serializers.CharField()
    started_at = serializers.DateTimeField()
    events = serializers.IntegerField()
    quarantined = serializers.IntegerField()
    deliveries = serializers.IntegerField()
    batches = serializers.IntegerField()
    failures = serializers.IntegerField()
    events_per_second = serializers.FloatField()
    batches_last_minute = serializers.IntegerField()
    batch_ms_mean = serializers.FloatField(allow_null=True)
    batch_ms_max = serializers.FloatField(allow_null=True)
    last_batch = BatchSerializer(allow_null=True)
    last_error = ErrorSerializer(allow_null=True)


class PipelineStatsSerializer(serializers.Serializer):
    group = serializers.CharField()
    consumers = serializers.IntegerField(help_text="Consumers that reported lately.")
    events_per_second = serializers.FloatField(help_text="Over the last minute, all consumers.")
    events = serializers.IntegerField(help_text="Events processed since each consumer started.")
    quarantined = serializers.IntegerField()
    deliveries = serializers.IntegerField()
    batches = serializers.IntegerField()
    failures = serializers.IntegerField(help_text="Batches that failed and were tried again.")
    batch_ms_mean = serializers.FloatField(allow_null=True, help_text="Over the last minute.")
    batch_ms_max = serializers.FloatField(allow_null=True, help_text="Over the last minute.")
    last_batch = BatchSerializer(allow_null=True)
    last_error = ErrorSerializer(allow_null=True)
    per_consumer = ConsumerStatsSerializer(many=True)
