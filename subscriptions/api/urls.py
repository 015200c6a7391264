"""Routes of the subscriptions API (mounted under /api/v1/)."""

from rest_framework.routers import SimpleRouter

from subscriptions.api.views import SubscriberViewSet, SubscriptionViewSet

router = SimpleRouter(trailing_slash=False)
router.register("subscribers", SubscriberViewSet, basename="subscriber")
router.register("subscriptions", SubscriptionViewSet, basename="subscription")
urlpatterns = router.urls
