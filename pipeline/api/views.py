"""The pipeline's lag and statistics (readers and above)."""

from __future__ import annotations

from confluent_kafka import KafkaException
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.permissions import IsReader
from accounts.throttling import ReadRateThrottle
from core.api import problems
from core.problems import DependencyUnavailable
from pipeline.api.serializers import PipelineLagSerializer, PipelineStatsSerializer
from pipeline.lag import pipeline_lag, pipeline_stats

READ_PROBLEMS = problems(
    s401="Not authenticated",
    s403="Role not allowed",
    s429="Rate limited (Retry-After)",
    s503="Kafka or Redis unavailable (Retry-After)",
)


class KafkaUnavailable(DependencyUnavailable):
    default_detail = "The event broker did not answer; the lag is unknown. Try again shortly."


class PipelineLagView(APIView):
    permission_classes = [IsReader]
    throttle_classes = [ReadRateThrottle]

    @extend_schema(
        operation_id="pipeline_lag",
        summary="The pipeline's lag per partition",
        description=(
            "From the Kafka admin API: the consumer group's committed offset on each partition "
            "of the events topic against the partition's watermarks, whether a consumer runs "
            "or not, with each live consumer's own report. The lag is only as right as the "
            "broker's high watermark (see the README)."
        ),
        responses={200: PipelineLagSerializer, **READ_PROBLEMS},
    )
    def get(self, request: Request) -> Response:
        try:
            return Response(pipeline_lag())
        except KafkaException as exc:
            raise KafkaUnavailable() from exc


class PipelineStatsView(APIView):
    permission_classes = [IsReader]
    throttle_classes = [ReadRateThrottle]

    @extend_schema(
        operation_id="pipeline_stats",
        summary="The pipeline's throughput, batch time, last batch and errors",
        description=(
            "Each live consumer reports its figures with its lag (every "
            "`PIPELINE_LAG_CHECK_SECONDS`); the totals add them up."
        ),
        responses={200: PipelineStatsSerializer, **READ_PROBLEMS},
    )
    def get(self, request: Request) -> Response:
        return Response(pipeline_stats())
