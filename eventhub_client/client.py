"""Publishing over REST with a pooled connection and retries that cannot publish twice.

Every publish carries an ``Idempotency-Key`` (generated unless given), so a POST retried after a
429 or 503, or after a connection error, gets the first answer instead of a second event.
Retries back off exponentially and honour ``Retry-After`` (urllib3's ``Retry``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import urllib3
from urllib3.util.retry import Retry

RETRY_STATUSES = (429, 502, 503, 504)


class EventHubError(Exception):
    """An API error, with the fields of its problem+json body."""

    def __init__(self, status: int, body: dict[str, Any]):
        self.status = status
        self.type = body.get("type", "")
        self.title = body.get("title", "")
        self.detail = body.get("detail", "")
        self.errors = body.get("errors", [])
        super().__init__(f"{status} {self.title}: {self.detail}")


class EventHubClient:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        retries: int = 5,
        backoff_factor: float = 0.2,
        pool_size: int = 10,
    ):
        if not (api_key or token):
            raise ValueError("give an api_key (ehk_...) or a JWT token")
        self.base_url = base_url.rstrip("/")
        self.headers = {"Content-Type": "application/json", "User-Agent": "eventhub-client/0.1"}
        if api_key:
            self.headers["X-API-Key"] = api_key
        else:
            self.headers["Authorization"] = f"Bearer {token}"
        self.timeout = timeout
        self.retry = Retry(
            total=retries,
            backoff_factor=backoff_factor,
            status_forcelist=RETRY_STATUSES,
            allowed_methods=None,  # POST too: the Idempotency-Key makes it safe to repeat
            respect_retry_after_header=True,
            raise_on_status=False,
        )
        self.pool = urllib3.PoolManager(maxsize=pool_size, retries=self.retry)

    def _request(self, method: str, path: str, body: Any = None, **headers: str) -> Any:
        response = self.pool.request(
            method,
            f"{self.base_url}{path}",
            body=json.dumps(body).encode() if body is not None else None,
            headers={**self.headers, **headers},
            timeout=self.timeout,
        )
        data = json.loads(response.data) if response.data else {}
        if response.status >= 400:
            raise EventHubError(response.status, data if isinstance(data, dict) else {})
        return data

    def publish(
        self, event: dict[str, Any], *, mode: str = "sync", idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Publish one event (CloudEvents or flat form); returns ``{"id", "status"}``."""
        path = "/api/v1/events" if mode == "sync" else "/api/v1/events/async"
        key = idempotency_key or uuid.uuid4().hex
        return self._request("POST", path, event, **{"Idempotency-Key": key})

    def publish_batch(
        self, events: list[dict[str, Any]], *, idempotency_key: str | None = None
    ) -> dict[str, Any]:
        """Publish up to 1000 events; returns the per-item results and counts."""
        key = idempotency_key or uuid.uuid4().hex
        return self._request("POST", "/api/v1/events/batch", events, **{"Idempotency-Key": key})

    def events(self, **filters: Any) -> dict[str, Any]:
        query = "&".join(f"{k}={v}" for k, v in filters.items())
        return self._request("GET", f"/api/v1/events{'?' + query if query else ''}")

    def close(self) -> None:
        self.pool.clear()
