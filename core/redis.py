"""The Redis clients of the process: ours (idempotency keys, the publish spool, rate-limit
buckets) and, where it is another, the Celery broker's."""

from __future__ import annotations

import threading

import redis
from django.conf import settings

_lock = threading.Lock()
_client: redis.Redis | None = None
_broker: dict[str, redis.Redis] = {}


def get_redis() -> redis.Redis:
    global _client
    with _lock:
        if _client is None:
            _client = redis.Redis.from_url(
                settings.REDIS_URL,
                socket_timeout=settings.REDIS_TIMEOUT,
                socket_connect_timeout=settings.REDIS_TIMEOUT,
                health_check_interval=30,
            )
        return _client


def get_broker_redis() -> redis.Redis | None:
    """A client of the Redis that is Celery's broker (None: the broker is not Redis)."""
    url = settings.CELERY_BROKER_URL
    if url == settings.REDIS_URL:
        return get_redis()
    if not url.startswith(("redis://", "rediss://", "unix://")):
        return None
    with _lock:
        if url not in _broker:
            _broker[url] = redis.Redis.from_url(
                url,
                socket_timeout=settings.REDIS_TIMEOUT,
                socket_connect_timeout=settings.REDIS_TIMEOUT,
                health_check_interval=30,
            )
        return _broker[url]


def reset_client() -> None:
    global _client
    with _lock:
        if _client is not None:
            _client.close()
        _client = None
        for client in _broker.values():
            client.close()
        _broker.clear()
