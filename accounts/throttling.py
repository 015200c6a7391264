"""Request rates per API key or user (DRF throttles, counted in the Redis cache).

When Redis cannot be reached the request is let through and a warning logged: losing the
rate limit for a moment is better than refusing every producer.
"""

from __future__ import annotations

import logging

import redis
from rest_framework.throttling import SimpleRateThrottle

from accounts.authentication import principal_id

logger = logging.getLogger(__name__)


class PrincipalRateThrottle(SimpleRateThrottle):
    def get_cache_key(self, request, view) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None  # anonymous callers are refused before throttling matters
        return f"throttle:{self.scope}:{principal_id(request.user)}"

    def allow_request(self, request, view) -> bool:
        try:
            return super().allow_request(request, view)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            logger.warning("rate limit skipped, Redis unavailable: %s", exc)
            return True


class PublishRateThrottle(PrincipalRateThrottle):
    scope = "publish"


class ReadRateThrottle(PrincipalRateThrottle):
    scope = "read"
