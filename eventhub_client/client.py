"""Publishing over REST with a pooled connection and retries that cannot publish twice.

Every publish carries an ``Idempotency-Key`` (generated once per call unless given), so a POST
repeated after a 429, a 503 or a lost connection gets the first answer instead of making a
second event. Events without an ``id`` get one here too (derived from the key), before the
first attempt: the server also de-duplicates on ``source`` + ``id``, and that check is atomic,
so it still holds when a retry reaches the server while the first attempt is in flight (the
``Idempotency-Key`` answer is only stored once the first attempt has finished).

Retries back off exponentially and honour ``Retry-After`` (urllib3's ``Retry``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Iterator, Mapping
from datetime import date, datetime
from typing import Any
from urllib.parse import quote

import urllib3
from urllib3.exceptions import HTTPError as TransportError
from urllib3.util.retry import Retry

# 429 (rate limited) and 503 (broker or another dependency down) carry Retry-After; 502 and 504
# come from proxies in front of EventHub while it restarts.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# GET is safe by nature, POST because of the Idempotency-Key and the event ids (see above).
RETRY_METHODS = frozenset({"GET", "POST"})
MODES = ("sync", "async")
USER_AGENT = "eventhub-client/0.1"


class EventHubError(Exception):
    """An error answered by the API, with the fields of its problem+json body.

    ``errors`` lists ``{"pointer": "/data/amount", "detail": ...}`` entries for invalid events.
    """

    def __init__(
        self,
        status: int | None,
        *,
        type: str = "about:blank",  # the problem+json member's name
        title: str = "",
        detail: str = "",
        errors: list[dict[str, Any]] | None = None,
        body: Any = None,
    ):
        self.status = status
        self.type = type
        self.title = title
        self.detail = detail
        self.errors = errors or []
        self.body = body
        super().__init__(f"{status or 'no answer'} {title}: {detail}".strip())

    @classmethod
    def from_response(cls, status: int, reason: str | None, data: bytes) -> EventHubError:
        """The error of a non-2xx answer; a body that is not problem+json keeps its text."""
        try:
            body = json.loads(data) if data else {}
        except ValueError:
            body = None
        if not isinstance(body, dict):
            text = data.decode("utf-8", "replace")[:500]
            return cls(status, title=reason or "", detail=text, body=text)
        return cls(
            status,
            type=str(body.get("type", "about:blank")),
            title=str(body.get("title", reason or "")),
            detail=str(body.get("detail", "")),
            errors=body.get("errors") if isinstance(body.get("errors"), list) else None,
            body=body,
        )


class EventHubConnectionError(EventHubError):
    """EventHub could not be reached (or kept failing) within the retries; ``status`` is None."""


def _json_default(value: Any) -> Any:
    # Timestamps are the one non-JSON type producers commonly put into events.
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _encode(body: Any) -> bytes:
    return json.dumps(body, separators=(",", ":"), default=_json_default).encode()


# Event ids made here are derived from the Idempotency-Key, so repeating a call with the same
# key sends the same body (the server refuses a reused key whose body differs).
ID_NAMESPACE = uuid.UUID("0f6a4f53-5b8e-4b43-9a55-6f1c3f2f7e61")


def _with_id(event: Any, idempotency_key: str, index: int | None = None) -> Any:
    """The event with an ``id`` when it has none (a copy; the caller's dict is left alone)."""
    if isinstance(event, Mapping) and event.get("id") is None and event.get("event_id") is None:
        name = idempotency_key if index is None else f"{idempotency_key}/{index}"
        return {**event, "id": str(uuid.uuid5(ID_NAMESPACE, name))}
    return event


class EventHubClient:
    """A thread-safe EventHub REST client; keep one per process and reuse it.

    ``retries`` bounds the attempts after the first one, for connection errors, read timeouts
    and answers 429, 502, 503 and 504; the pause is ``Retry-After`` when the server sends one,
    else ``backoff_factor * 2 ** (attempt - 1)`` seconds up to ``backoff_max``.
    """

    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        token: str | None = None,
        timeout: float = 10.0,
        retries: int = 5,
        backoff_factor: float = 0.2,
        backoff_max: float = 30.0,
        pool_size: int = 10,
        assign_ids: bool = True,
    ):
        if bool(api_key) == bool(token):
            raise ValueError("give either an api_key (ehk_...) or a JWT token")
        self.base_url = base_url.rstrip("/")
        self.assign_ids = assign_ids
        self.headers = {
            "Content-Type": "application/json",
            "Accept": "application/json, application/problem+json",
            "User-Agent": USER_AGENT,
        }
        if api_key:
            self.headers["X-API-Key"] = api_key
        else:
            self.headers["Authorization"] = f"Bearer {token}"
        self.timeout = urllib3.Timeout(total=timeout)
        self.retry = Retry(
            total=retries,
            connect=retries,
            read=retries,
            status=retries,
            other=0,
            redirect=0,  # a redirected POST would lose its body; nothing here redirects
            allowed_methods=RETRY_METHODS,
            status_forcelist=RETRY_STATUSES,
            backoff_factor=backoff_factor,
            backoff_max=backoff_max,
            respect_retry_after_header=True,
            raise_on_status=False,  # the last answer is turned into an EventHubError below
            raise_on_redirect=False,
        )
        self.pool = urllib3.PoolManager(num_pools=4, maxsize=pool_size, block=False)

    # --- publishing ---------------------------------------------------------------------------

    def publish(
        self,
        event: Mapping[str, Any],
        *,
        mode: str = "sync",
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Publish one event (flat or CloudEvents structured form).

        ``sync`` answers once Kafka acknowledged it, ``async`` once the server's producer holds
        it. Returns ``{"id", "status": "accepted", "replayed"}``; ``replayed`` is true when the
        server had seen this event or this key before and answered from memory.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        path = "/api/v1/events" if mode == "sync" else "/api/v1/events/async"
        key = idempotency_key or uuid.uuid4().hex
        body = _with_id(event, key) if self.assign_ids else event
        data, headers = self._request("POST", path, body, key)
        return {**data, "replayed": headers.get("Idempotent-Replayed") == "true"}

    def publish_batch(
        self,
        events: Iterable[Mapping[str, Any]],
        *,
        mode: str = "sync",
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        """Publish up to 1000 events in one request; each is answered on its own.

        Returns ``{"accepted", "duplicates", "invalid", "failed", "results": [...]}`` with one
        ``{"status", "id", "errors"?}`` per event, in order. Only the whole request failing
        (401, 413, 429 after the retries, 503 when the broker took none) raises.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
        key = idempotency_key or uuid.uuid4().hex
        items = [_with_id(e, key, i) if self.assign_ids else e for i, e in enumerate(events)]
        path = "/api/v1/events/batch" + ("?mode=async" if mode == "async" else "")
        data, _ = self._request("POST", path, items, key)
        return data

    # --- reading ------------------------------------------------------------------------------

    def get_event(self, event_id: str, source: str | None = None) -> dict[str, Any]:
        """One stored event (once the pipeline has written it to MongoDB). An event is its
        source and id together: name the ``source`` when several producers use the id."""
        fields = {"source": source} if source is not None else None
        data, _ = self._request("GET", f"/api/v1/events/{quote(event_id, safe='')}", fields=fields)
        return data

    def list_events(self, **filters: Any) -> dict[str, Any]:
        """Stored events, newest first: ``{"results": [...], "next": cursor}``.

        Filters: ``type``, ``source``, ``subject``/``user_id``, ``severity_min``,
        ``severity_max``, ``since``, ``until``, ``limit``, ``cursor``.
        """
        return self.page("/api/v1/events", **filters)

    def page(self, path: str, **filters: Any) -> dict[str, Any]:
        """One page of any list (``/api/v1/deliveries``, ``/api/v1/subscriptions``, ...):
        ``{"results": [...], "next": cursor or None}``; pass ``cursor=`` for the next one."""
        fields = {k: str(v) for k, v in filters.items() if v is not None}
        data, _ = self._request("GET", path, fields=fields)
        return data

    def pages(self, path: str, **filters: Any) -> Iterator[dict[str, Any]]:
        """Every item of a list, page after page, following the ``next`` cursors."""
        cursor = filters.pop("cursor", None)
        while True:
            data = self.page(path, **filters, cursor=cursor)
            yield from data["results"]
            cursor = data.get("next")
            if not cursor:
                return

    # --- plumbing -----------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        body: Any = None,
        idempotency_key: str | None = None,
        *,
        fields: dict[str, str] | None = None,
    ) -> tuple[Any, Mapping[str, str]]:
        headers = dict(self.headers)
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        try:
            # The body is encoded once, so every retry sends the same bytes: the server
            # refuses a reused Idempotency-Key whose body differs.
            response = self.pool.request(
                method,
                self.base_url + path,
                body=_encode(body) if body is not None else None,
                fields=fields or None,
                headers=headers,
                timeout=self.timeout,
                retries=self.retry,
            )
        except TransportError as exc:
            raise EventHubConnectionError(
                None, title="EventHub unreachable", detail=str(exc)
            ) from exc
        if response.status >= 400:
            raise EventHubError.from_response(response.status, response.reason, response.data)
        try:
            data = json.loads(response.data) if response.data else {}
        except ValueError as exc:
            raise EventHubError(
                response.status, title="Unreadable answer", detail=str(exc)
            ) from exc
        return data, response.headers

    def close(self) -> None:
        """Close the pooled connections."""
        self.pool.clear()

    def __enter__(self) -> EventHubClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
