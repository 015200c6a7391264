"""Routes of the deliveries API (mounted under /api/v1/)."""

from rest_framework.routers import SimpleRouter

from webhooks.api.views import DeliveryViewSet, SubscriptionDeliveryViewSet

router = SimpleRouter(trailing_slash=False)
router.register("deliveries", DeliveryViewSet, basename="delivery")
# /subscriptions/{id}/test and /resume: the subscription actions that act on deliveries
router.register("subscriptions", SubscriptionDeliveryViewSet, basename="subscription-deliveries")
urlpatterns = router.urls
