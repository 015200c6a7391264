from rest_framework.routers import SimpleRouter

from rules.api.views import RuleViewSet

router = SimpleRouter(trailing_slash=False)
router.register("rules", RuleViewSet, basename="rule")
urlpatterns = router.urls
