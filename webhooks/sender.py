"""The one outbound HTTP sender of webhooks.

Every process has one event loop thread with one pooled aiohttp session, so a Celery worker
thread hands over a batch of requests and hundreds of them are in flight at once: a slow
endpoint costs a connection and a timer, not a worker. Redirects are never followed, each
request has its own total timeout, and the session's resolver drops loopback, private,
link-local and reserved addresses (unless allowed in settings) from every DNS answer before a
connection is made, so the guard applies to the addresses actually used. IP literals, which
skip the resolver, are checked before the request.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import socket
import threading
import time
from concurrent.futures import Future
from contextvars import ContextVar
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.resolver import ThreadedResolver
from django.conf import settings
from opentelemetry.trace import SpanKind, Status, StatusCode

from core import ssrf, tracing
from webhooks.models import ErrorClass

logger = logging.getLogger(__name__)

BODY_EXCERPT_BYTES = 2048


@dataclass(frozen=True)
class OutboundRequest:
    url: str
    body: bytes
    headers: dict[str, str]
    timeout: float
    traceparent: str = ""  # the parent of the attempt's span (tracing on)
    attempt: int = 0
    # time.monotonic() after which the request is not started at all (its claim would lapse
    # before the outcome is written): None, no such limit
    send_by: float | None = None


@dataclass(frozen=True)
class Outcome:
    """What one request came to: a response (``status``) or an error (``error_class``)."""

    status: int | None
    body: str
    duration_ms: int
    error_class: str = ""
    error: str = ""
    retry_after: float | None = None
    remote_address: str | None = None  # the address connected to, when a response came
    unsent: bool = False  # not started: its ``send_by`` passed while it waited for a connection

    @property
    def succeeded(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


class GuardedResolver(ThreadedResolver):
    """A resolver that keeps only the addresses webhooks may connect to."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[dict[str, Any]]:
        answers = await super().resolve(host, port, family)
        allowed = [a for a in answers if ssrf.is_allowed_address(ipaddress.ip_address(a["host"]))]
        if not allowed:
            raise ssrf.UnsafeURL(ssrf.refusal(host, ipaddress.ip_address(answers[0]["host"])))
        return allowed


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta-seconds or an HTTP date), else None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(tz=UTC)).total_seconds())


def _error_class(exc: BaseException) -> str:
    if isinstance(exc, ssrf.UnsafeURL):
        return ErrorClass.REFUSED_URL
    if isinstance(exc, asyncio.TimeoutError | aiohttp.ServerTimeoutError):
        return ErrorClass.TIMEOUT
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        return ErrorClass.DNS
    if isinstance(exc, aiohttp.ClientSSLError):
        return ErrorClass.TLS
    return ErrorClass.CONNECTION


# The address the current request's connection goes to, set by the connector in the request's
# own task (each request runs in one): read once the response came, whether or not its
# connection has already gone back to the pool.
_remote: ContextVar[str | None] = ContextVar("webhook_remote_address", default=None)


class RecordingConnector(aiohttp.TCPConnector):
    """The pooled connector, noting which address each request's connection goes to."""

    async def connect(self, req, traces, timeout):
        connection = await super().connect(req, traces, timeout)
        transport = connection.transport
        peer = transport.get_extra_info("peername") if transport is not None else None
        _remote.set(str(peer[0]).split("%")[0] if peer else None)
        return connection


class Sender:
    """The process's event loop thread and HTTP session."""

    def __init__(self) -> None:
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="webhook-sender", daemon=True)
        self._failure: BaseException | None = None
        self._thread.start()
        self._ready.wait()
        if self._failure is not None:
            raise RuntimeError("the webhook sender could not start") from self._failure

    def _serve(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._session = self._loop.run_until_complete(self._open())
        except BaseException as exc:
            self._failure = exc
            raise
        finally:
            self._ready.set()
        self._loop.run_forever()

    async def _open(self) -> aiohttp.ClientSession:
        self._gates: dict[tuple[str, int], asyncio.Semaphore] = {}
        self._in_flight = asyncio.Semaphore(settings.WEBHOOK_MAX_IN_FLIGHT)
        return aiohttp.ClientSession(
            # the limits are the gates above, taken before a request's clock starts
            connector=RecordingConnector(
                limit=0,
                limit_per_host=0,
                resolver=GuardedResolver(),
                ttl_dns_cache=10,
            ),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Content-Type"),
        )

    def _gate(self, url: str) -> asyncio.Semaphore:
        """The endpoint's share of connections (host and port): requests wait here, before
        their clock starts, so a queue of requests for one endpoint never times out there."""
        parts = urlsplit(url)
        key = (parts.hostname or "", parts.port or (443 if parts.scheme == "https" else 80))
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = asyncio.Semaphore(settings.WEBHOOK_MAX_PER_ENDPOINT)
        return gate

    async def _send(self, request: OutboundRequest) -> Outcome:
        async with self._gate(request.url), self._in_flight:
            if request.send_by is not None and time.monotonic() > request.send_by:
                return Outcome(status=None, body="", duration_ms=0, unsent=True)
            if not tracing.enabled():
                return await self._post(request)
            return await self._traced_post(request)

    async def _traced_post(self, request: OutboundRequest) -> Outcome:
        """The attempt in a ``delivery_attempt`` span, a child of the event's trace; the
        receiver gets the span's context as ``traceparent`` (not signed: it is not part of
        what Standard Webhooks signs)."""
        with tracing.tracer.start_as_current_span(
            "delivery_attempt",
            context=tracing.context_from_traceparent(request.traceparent),
            kind=SpanKind.CLIENT,
            attributes={
                "http.request.method": "POST",
                # the host only: a webhook URL's path and query may hold a credential
                "server.address": urlsplit(request.url).hostname or "",
                "eventhub.delivery.attempt": request.attempt,
                "eventhub.webhook_id": request.headers.get("webhook-id", ""),
            },
        ) as span:
            headers = {**request.headers, tracing.TRACEPARENT: tracing.traceparent_of(span)}
            outcome = await self._post(replace(request, headers=headers))
            if outcome.status is not None:
                span.set_attribute("http.response.status_code", outcome.status)
            if not outcome.succeeded:
                span.set_status(Status(StatusCode.ERROR, outcome.error or str(outcome.status)))
                if outcome.error_class:
                    span.set_attribute("error.type", outcome.error_class)
            return outcome

    async def _post(self, request: OutboundRequest) -> Outcome:
        started = time.monotonic()
        _remote.set(None)
        try:
            ssrf.check_literal(request.url)
            async with asyncio.timeout(request.timeout):
                async with self._session.post(
                    request.url,
                    data=request.body,
                    headers=request.headers,
                    allow_redirects=False,
                ) as response:
                    excerpt = await response.content.read(BODY_EXCERPT_BYTES)
                    return Outcome(
                        remote_address=_remote.get(),
                        status=response.status,
                        body=excerpt.decode("utf-8", errors="replace"),
                        duration_ms=int((time.monotonic() - started) * 1000),
                        retry_after=parse_retry_after(response.headers.get("Retry-After")),
                    )
        except Exception as exc:  # noqa: BLE001 - every failure becomes a recorded outcome
            error_class = _error_class(exc)
            detail = str(exc) or type(exc).__name__
            if error_class == ErrorClass.TIMEOUT:
                detail = f"no answer within {request.timeout:g} s"
            return Outcome(
                status=None,
                body="",
                duration_ms=int((time.monotonic() - started) * 1000),
                error_class=error_class,
                error=detail[:500],
            )

    async def _send_all(self, requests: list[OutboundRequest]) -> list[Outcome]:
        return list(await asyncio.gather(*(self._send(r) for r in requests)))

    def submit(self, requests: list[OutboundRequest]) -> Future:
        """Send concurrently; the future resolves to every outcome, in the order of
        ``requests``, without the caller having to wait for it."""
        return asyncio.run_coroutine_threadsafe(self._send_all(requests), self._loop)

    def send_many(self, requests: list[OutboundRequest]) -> list[Outcome]:
        """Send concurrently and wait for every outcome (in the order of ``requests``)."""
        if not requests:
            return []
        return self.submit(requests).result()

    def close(self) -> None:
        async def _close() -> None:
            await self._session.close()

        asyncio.run_coroutine_threadsafe(_close(), self._loop).result(timeout=5)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)


_lock = threading.Lock()
_sender: Sender | None = None
_pid: int | None = None


def get_sender() -> Sender:
    """The process's sender, made on first use (and again in a forked child)."""
    global _sender, _pid
    with _lock:
        if _sender is None or _pid != os.getpid():
            _sender, _pid = Sender(), os.getpid()
        return _sender


def reset_sender() -> None:
    """Close the sender (tests that change its settings, process shutdown)."""
    global _sender
    with _lock:
        if _sender is not None and _pid == os.getpid():
            _sender.close()
        _sender = None
