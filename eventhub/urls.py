"""The project's URLs: health, admin, metrics and the API."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from accounts.api.views import TokenObtainView, TokenRefreshView
from eventhub import health, metrics
from eventhub.graphql import EventHubGraphQLView

handler400 = "core.problems.handler400"
handler403 = "core.problems.handler403"
handler404 = "core.problems.handler404"
handler500 = "core.problems.handler500"

urlpatterns = [
    path("health", health.health, name="health"),
    path("ready", health.ready, name="ready"),
    path("health/<str:name>", health.dependency, name="health-dependency"),
    path("admin/", admin.site.urls),
    path("graphql", EventHubGraphQLView.as_view(), name="graphql"),
    path("metrics", metrics.metrics, name="metrics"),
    path("api/v1/auth/token", TokenObtainView.as_view(), name="token-obtain"),
    path("api/v1/auth/token/refresh", TokenRefreshView.as_view(), name="token-refresh"),
    path("api/v1/", include("events.api.urls")),
    path("api/v1/", include("rules.api.urls")),
    path("api/v1/", include("subscriptions.api.urls")),
    path("api/v1/", include("webhooks.api.urls")),
    path("api/v1/", include("analytics.api.urls")),
    path("api/v1/", include("pipeline.api.urls")),
    path("api/v1/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
]
