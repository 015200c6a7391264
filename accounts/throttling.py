"""Request rates per API key or user: DRF throttles counted in Redis by ``limits``.

The counter is a sliding window kept as two fixed-window counters (``limits``' sliding window
counter): one Lua call to Redis per request whatever the rate, so the cost does not grow with
the traffic (DRF's ``SimpleRateThrottle`` keeps every request's time in a pickled list), and the
limit holds across every process sharing the Redis.

When Redis cannot be reached the request is let through and a warning logged: losing the
rate limit for a moment is better than refusing every producer.
"""

from __future__ import annotations

import logging
import threading
import time

import redis
from django.conf import settings
from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import SlidingWindowCounterRateLimiter
from rest_framework.throttling import SimpleRateThrottle

from accounts.authentication import principal_id
from core.redis import get_redis

logger = logging.getLogger(__name__)

_lock = threading.Lock()
_limiter: tuple[redis.Redis, SlidingWindowCounterRateLimiter] | None = None


def get_limiter() -> SlidingWindowCounterRateLimiter:
    """The process's limiter, on the connection pool of the process's Redis client (made again
    when that client is)."""
    global _limiter
    client = get_redis()
    with _lock:
        if _limiter is None or _limiter[0] is not client:
            prefix = settings.CACHES["default"].get("KEY_PREFIX") or "eventhub"
            storage = RedisStorage(
                settings.REDIS_URL,
                connection_pool=client.connection_pool,
                key_prefix=f"{prefix}:throttle",
                # one connection of that pool, kept (behind redis-py's lock): no pool checkout,
                # with its check that the connection has nothing unread, per request
                single_connection_client=True,
            )
            _limiter = (client, SlidingWindowCounterRateLimiter(storage))
        return _limiter[1]


class PrincipalRateThrottle(SimpleRateThrottle):
    """``THROTTLE_RATES[scope]`` requests per period for each caller (``rate`` and ``scope`` as
    DRF's throttles read them)."""

    def get_cache_key(self, request, view) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None  # anonymous callers are refused before throttling matters
        return principal_id(request.user)

    def allow_request(self, request, view) -> bool:
        if self.rate is None:
            return True
        self.key = self.get_cache_key(request, view)
        if self.key is None:
            return True
        self.item = RateLimitItemPerSecond(self.num_requests, self.duration)
        try:
            return get_limiter().hit(self.item, self.scope, self.key)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            logger.warning("rate limit skipped, Redis unavailable: %s", exc)
            return True

    def wait(self) -> float | None:
        """Seconds until the window lets a request through again (``Retry-After``)."""
        try:
            reset = get_limiter().get_window_stats(self.item, self.scope, self.key).reset_time
        except (redis.ConnectionError, redis.TimeoutError):
            return float(self.duration)
        return max(reset - time.time(), 1.0)


class PublishRateThrottle(PrincipalRateThrottle):
    scope = "publish"


class ReadRateThrottle(PrincipalRateThrottle):
    scope = "read"
