"""Routes of the pipeline API (mounted under /api/v1/)."""

from django.urls import path

from pipeline.api.views import PipelineLagView, PipelineStatsView

urlpatterns = [
    path("pipeline/lag", PipelineLagView.as_view(), name="pipeline-lag"),
    path("pipeline/stats", PipelineStatsView.as_view(), name="pipeline-stats"),
]
