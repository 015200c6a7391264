"""GraphQL subscriptions over the graphql-transport-ws protocol (the ``graphql-ws`` library's,
which Apollo and urql speak): connection_init (credentials in its payload, or in the upgrade
request's headers), connection_ack, subscribe, next, error, complete, ping and pong."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

from graphql import ExecutionResult, GraphQLError, parse, validate

from analytics.live.asgi import caller, problem_of
from analytics.live.feed import StreamRefused, slots

logger = logging.getLogger(__name__)

PROTOCOL = "graphql-transport-ws"


class Context:
    """What resolvers see of the caller (``info.context.credential``)."""

    def __init__(self, credential: str) -> None:
        self.credential = credential


class Connection:
    def __init__(self, schema, send, headers: dict[str, str], rules: list) -> None:
        self.schema, self._send, self.headers, self.rules = schema, send, headers, rules
        self.credential: str | None = None
        self.operations: dict[str, asyncio.Task] = {}

    async def send(self, message: dict[str, Any]) -> None:
        await self._send({"type": "websocket.send", "text": json.dumps(message, default=str)})

    async def close(self, code: int, reason: str) -> None:
        await self._send({"type": "websocket.close", "code": code, "reason": reason[:120]})

    async def handle(self, message: dict[str, Any]) -> bool:
        """Act on one client message; False once the connection is closed."""
        kind = message.get("type")
        if kind == "ping":
            await self.send({"type": "pong"})
        elif kind == "pong":
            pass
        elif kind == "connection_init":
            if self.credential is not None:
                await self.close(4429, "Too many initialisation requests")
                return False
            payload = message.get("payload") or {}
            headers = dict(self.headers)
            for name, value in payload.items() if isinstance(payload, dict) else []:
                if isinstance(value, str):
                    headers[name.lower()] = value
            try:
                self.credential = await caller(headers)
            except StreamRefused as refused:
                await self.close(4403 if refused.status == 403 else 4401, refused.detail)
                return False
            await self.send({"type": "connection_ack"})
        elif kind == "subscribe":
            if self.credential is None:
                await self.close(4401, "Unauthorized")
                return False
            operation = message.get("id")
            if not isinstance(operation, str) or operation in self.operations:
                await self.close(4409, f"Subscriber for {operation} already exists")
                return False
            self.operations[operation] = asyncio.ensure_future(
                self.run(operation, message.get("payload") or {})
            )
        elif kind == "complete":
            task = self.operations.pop(message.get("id"), None)
            if task is not None:
                task.cancel()
        else:
            await self.close(4400, f"Unexpected message {kind!r}")
            return False
        return True

    async def run(self, operation: str, payload: dict[str, Any]) -> None:
        taken = False
        try:
            try:
                document = parse(payload.get("query") or "")
            except GraphQLError as exc:
                await self.send({"id": operation, "type": "error", "payload": [exc.formatted]})
                return
            problems = validate(self.schema.graphql_schema, document, self.rules)
            if problems:
                await self.send(
                    {"id": operation, "type": "error", "payload": [e.formatted for e in problems]}
                )
                return
            slots.take(self.credential)
            taken = True
            results = await self.schema.subscribe(
                payload["query"],
                context_value=Context(self.credential),
                variable_values=payload.get("variables"),
                operation_name=payload.get("operationName"),
            )
            if isinstance(results, ExecutionResult):
                await self.send(
                    {
                        "id": operation,
                        "type": "error",
                        "payload": [e.formatted for e in results.errors or []],
                    }
                )
                return
            async for result in results:
                await self.send({"id": operation, "type": "next", "payload": result.formatted})
            await self.send({"id": operation, "type": "complete"})
        except StreamRefused as refused:
            await self.send(
                {
                    "id": operation,
                    "type": "error",
                    "payload": [
                        {
                            "message": refused.detail,
                            "extensions": {
                                "code": refused.code.upper().replace("-", "_"),
                                "problem": problem_of(refused),
                            },
                        }
                    ],
                }
            )
        except Exception:
            logger.exception("subscription %s failed", operation)
            await self.send(
                {
                    "id": operation,
                    "type": "error",
                    "payload": [
                        {"message": "The subscription failed.", "extensions": {"code": "INTERNAL"}}
                    ],
                }
            )
        finally:
            if taken:
                slots.give_back(self.credential)
            self.operations.pop(operation, None)


def graphql_ws_app(schema, rules: list):
    """The ASGI app of GraphQL subscriptions on ``schema``, validated with ``rules``."""

    async def app(scope, receive, send) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        if PROTOCOL not in scope.get("subprotocols", []):
            await send(
                {"type": "websocket.close", "code": 4406, "reason": "Subprotocol not acceptable"}
            )
            return
        await send({"type": "websocket.accept", "subprotocol": PROTOCOL})
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        connection = Connection(schema, send, headers, rules)
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    return
                try:
                    parsed = json.loads(message.get("text") or message.get("bytes") or "")
                except ValueError:
                    await connection.close(4400, "Invalid message received")
                    return
                if not isinstance(parsed, dict) or not await connection.handle(parsed):
                    return
        finally:
            for task in connection.operations.values():
                task.cancel()

    return app
