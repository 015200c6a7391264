"""The ASGI doors of the live streams: server-sent events at ``/api/v1/stream/events`` and
``/api/v1/stream/metrics``, the same event feed as JSON messages on the WebSocket
``/ws/events``. Same credentials and roles as the rest of the API (reader or above), the same
filters as the analytics time series, the problem+json shape for a stream that cannot start.

A client that does not take what is sent for ``STREAM_SEND_TIMEOUT_SECONDS`` is disconnected
(an SSE ``error`` event or a WebSocket close frame gives the reason when it can still be
sent); nothing queues up in the server meanwhile, as the feed reads MongoDB only when the
client has taken the change before.
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any
from urllib.parse import parse_qsl

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import close_old_connections
from rest_framework import exceptions

from accounts.authentication import has_role, principal_id, user_from_headers
from accounts.roles import Role
from analytics.api.serializers import StreamFilterSerializer
from analytics.live.feed import Change, EventFeed, MetricsFeed, StreamRefused, slots
from core.problems import PROBLEM_CONTENT_TYPE, flatten_errors, problem_body

logger = logging.getLogger(__name__)

SSE_PATHS = {"/api/v1/stream/events": EventFeed, "/api/v1/stream/metrics": MetricsFeed}
WEBSOCKET_PATHS = {"/ws/events": EventFeed}


def _headers(scope: dict[str, Any]) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}


def _caller(headers: dict[str, str]):
    try:
        user = user_from_headers(headers)
        if user is None:
            raise StreamRefused(
                401,
                "not-authenticated",
                "Unauthorized",
                "Authentication credentials were not provided.",
            )
        if not has_role(user, Role.READER):
            raise StreamRefused(
                403, "permission-denied", "Forbidden", "A reader, writer or admin role is needed."
            )
        return principal_id(user)
    except exceptions.AuthenticationFailed as exc:
        raise StreamRefused(401, "authentication-failed", "Unauthorized", str(exc.detail)) from exc
    finally:
        close_old_connections()


caller = sync_to_async(_caller)


def stream_filters(query: dict[str, str], *, payload_filter: bool = True):
    """The stream's filters from its query parameters (StreamRefused 400 naming the bad ones)."""
    if not payload_filter and ("filter" in query or "subject" in query):
        raise StreamRefused(
            400,
            "validation-error",
            "Invalid request",
            "The metrics stream filters by type and source only.",
        )
    serializer = StreamFilterSerializer(data=query)
    if not serializer.is_valid():
        refused = StreamRefused(
            400, "validation-error", "Invalid request", "The request has invalid fields."
        )
        refused.errors = flatten_errors(serializer.errors)
        raise refused
    return serializer.filters()


def problem_of(refused: StreamRefused) -> dict[str, Any]:
    extra = {"errors": refused.errors} if getattr(refused, "errors", None) else {}
    return problem_body(refused.status, refused.title, refused.detail, refused.code, **extra)


async def start_feed(scope: dict[str, Any], feeds: dict[str, type], resume: str | None):
    """Authenticate, take a slot, open the feed: (feed, credential) or StreamRefused."""
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    resume = resume or query.pop("last_event_id", None)
    feed_class = feeds[scope["path"]]
    credential = await caller(_headers(scope))
    filters = stream_filters(query, payload_filter=feed_class is EventFeed)
    slots.take(credential)
    try:
        feed = feed_class(filters, resume)
        await feed.open()
    except BaseException:
        slots.give_back(credential)
        raise
    return feed, credential


async def _send(send, message: dict[str, Any]) -> None:
    await asyncio.wait_for(send(message), settings.STREAM_SEND_TIMEOUT_SECONDS)


async def _problem_response(send, refused: StreamRefused) -> None:
    headers = [(b"content-type", PROBLEM_CONTENT_TYPE.encode())]
    if refused.retry_after is not None:
        headers.append((b"retry-after", str(refused.retry_after).encode()))
    if refused.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="api"'))
    await send({"type": "http.response.start", "status": refused.status, "headers": headers})
    await send({"type": "http.response.body", "body": json.dumps(problem_of(refused)).encode()})


def sse_frame(change: Change, event: str) -> bytes:
    return f"id: {change.position}\nevent: {event}\ndata: {change.json}\n\n".encode()


async def sse_app(scope, receive, send) -> None:
    """Server-sent events of one feed until the client leaves or cannot keep up."""
    if scope["method"] not in ("GET", "HEAD"):
        await _problem_response(
            send,
            StreamRefused(405, "method-not-allowed", "Method not allowed", "Streams answer GET."),
        )
        return
    try:
        feed, credential = await start_feed(scope, SSE_PATHS, _headers(scope).get("last-event-id"))
    except StreamRefused as refused:
        await _problem_response(send, refused)
        return
    name = "metrics" if isinstance(feed, MetricsFeed) else "event"
    try:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"text/event-stream; charset=utf-8"),
                    (b"cache-control", b"no-store"),
                    (b"x-accel-buffering", b"no"),
                ],
            }
        )
        retry = int(settings.STREAM_RETRY_MS)
        await send(
            {
                "type": "http.response.body",
                "body": f"retry: {retry}\n\n".encode(),
                "more_body": True,
            }
        )
        pump = asyncio.ensure_future(_pump_sse(feed, send, name))
        gone = asyncio.ensure_future(_disconnected(receive))
        done, pending = await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
        if pump in done and not pump.cancelled() and pump.exception() is not None:
            raise pump.exception()
    except (TimeoutError, OSError) as exc:
        logger.info(
            "stream %s to %s ended: the client did not keep up (%s)",
            scope["path"],
            credential,
            type(exc).__name__,
        )
    finally:
        slots.give_back(credential)
        await feed.close()


async def _disconnected(receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _pump_sse(feed, send, name: str) -> None:
    idle = 0.0
    try:
        while True:
            change = await feed.next()
            if change is None:
                idle += 1
                if idle >= settings.STREAM_HEARTBEAT_SECONDS:
                    idle = 0
                    await _send(
                        send,
                        {
                            "type": "http.response.body",
                            "body": b": keepalive\n\n",
                            "more_body": True,
                        },
                    )
                continue
            idle = 0
            await _send(
                send,
                {"type": "http.response.body", "body": sse_frame(change, name), "more_body": True},
            )
    except StreamRefused as refused:  # MongoDB went away: say so, let the client reconnect
        body = f"event: error\ndata: {json.dumps(problem_of(refused))}\n\n".encode()
        await _send(send, {"type": "http.response.body", "body": body, "more_body": False})
    except TimeoutError:
        await _too_slow_sse(send)
        raise


async def _too_slow_sse(send) -> None:
    refused = StreamRefused(
        408,
        "client-too-slow",
        "Client too slow",
        f"The client took nothing for {settings.STREAM_SEND_TIMEOUT_SECONDS} seconds; "
        "reconnect with Last-Event-ID to go on.",
    )
    body = f"event: error\ndata: {json.dumps(problem_of(refused))}\n\n".encode()
    try:
        await asyncio.wait_for(
            send({"type": "http.response.body", "body": body, "more_body": False}), 1
        )
    except (TimeoutError, OSError):
        pass


# WebSocket close codes: 4000 + the HTTP status of the problem
async def websocket_app(scope, receive, send) -> None:
    """The event feed as one JSON message per event: {"id": position, "event": {...}}."""
    if (await receive())["type"] != "websocket.connect":
        return
    try:
        feed, credential = await start_feed(scope, WEBSOCKET_PATHS, None)
    except StreamRefused as refused:
        # accepted, then closed with the reason: a close before accepting is a bare HTTP 403
        await send({"type": "websocket.accept"})
        await send(
            {
                "type": "websocket.close",
                "code": 4000 + refused.status,
                "reason": refused.detail[:120],
            }
        )
        return
    try:
        await send({"type": "websocket.accept"})
        pump = asyncio.ensure_future(_pump_websocket(feed, send))
        gone = asyncio.ensure_future(_websocket_gone(receive))
        done, pending = await asyncio.wait({pump, gone}, return_when=asyncio.FIRST_COMPLETED)
        for task in pending:
            task.cancel()
    finally:
        slots.give_back(credential)
        await feed.close()


async def _websocket_gone(receive) -> None:
    while (await receive())["type"] != "websocket.disconnect":
        pass


async def _pump_websocket(feed, send) -> None:
    try:
        while True:
            change = await feed.next()
            if change is None:
                continue
            text = f'{{"id":{json.dumps(change.position)},"event":{change.json}}}'
            await _send(send, {"type": "websocket.send", "text": text})
    except StreamRefused as refused:
        await send(
            {
                "type": "websocket.close",
                "code": 4000 + refused.status,
                "reason": refused.detail[:120],
            }
        )
    except TimeoutError:
        try:
            await asyncio.wait_for(
                send({"type": "websocket.close", "code": 4408, "reason": "client too slow"}), 1
            )
        except (TimeoutError, OSError):
            pass
