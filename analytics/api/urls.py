from django.urls import path

from analytics.api import views

urlpatterns = [
    path("analytics/summary", views.SummaryView.as_view(), name="analytics-summary"),
    path("analytics/timeseries", views.TimeseriesView.as_view(), name="analytics-timeseries"),
    path("analytics/top-errors", views.TopErrorsView.as_view(), name="analytics-top-errors"),
    path(
        "analytics/user-activity", views.UserActivityView.as_view(), name="analytics-user-activity"
    ),
    path("analytics/funnel", views.FunnelView.as_view(), name="analytics-funnel"),
]
