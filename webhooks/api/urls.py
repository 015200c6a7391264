"""Routes of the deliveries API (mounted under /api/v1/)."""

from rest_framework.routers import SimpleRouter

from webhooks.api.views import DeliveryViewSet

router = SimpleRouter(trailing_slash=False)
router.register("deliveries", DeliveryViewSet, basename="delivery")
urlpatterns = router.urls
