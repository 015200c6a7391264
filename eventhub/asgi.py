"""ASGI entry point (``make up`` serves it with uvicorn on ``ASGI_PORT``): the live streams
(server-sent events, the events WebSocket, GraphQL subscriptions over graphql-transport-ws on
``/graphql``) and every other path through Django, as the WSGI server does."""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventhub.settings")
django_application = get_asgi_application()

from graphql import specified_rules  # noqa: E402

from analytics.live.asgi import SSE_PATHS, WEBSOCKET_PATHS, sse_app, websocket_app  # noqa: E402
from analytics.live.graphql_ws import graphql_ws_app  # noqa: E402
from eventhub.graphql import DepthLimit, FieldCountLimit  # noqa: E402
from eventhub.schema import schema  # noqa: E402

subscriptions = graphql_ws_app(schema, [*specified_rules, DepthLimit, FieldCountLimit])


async def application(scope, receive, send):
    kind, path = scope["type"], scope.get("path", "")
    if kind == "http" and path in SSE_PATHS:
        return await sse_app(scope, receive, send)
    if kind == "websocket":
        if path in WEBSOCKET_PATHS:
            return await websocket_app(scope, receive, send)
        if path == "/graphql":
            return await subscriptions(scope, receive, send)
        await receive()
        return await send({"type": "websocket.close", "code": 4404, "reason": "No such stream"})
    return await django_application(scope, receive, send)
