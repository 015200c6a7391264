from django.urls import path
from rest_framework.routers import SimpleRouter

from events.api import views

router = SimpleRouter(trailing_slash=False)
router.register("event-types", views.EventTypeViewSet, basename="event-type")

urlpatterns = [
    path("events", views.EventsView.as_view(), name="events"),
    path("events/async", views.EventsAsyncView.as_view(), name="events-async"),
    path("events/batch", views.EventBatchView.as_view(), name="events-batch"),
    path("events/search", views.EventSearchView.as_view(), name="events-search"),
    path("events/<str:event_id>", views.EventDetailView.as_view(), name="event-detail"),
    *router.urls,
]
