"""GraphQL errors in EventHub's shape: a message and a ``code`` extension, the GraphQL face of
the problem+json shape (``problem_to_error`` maps a domain error to it)."""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError

from core.problems import DependencyUnavailable, ProblemError


def error(message: str, code: str, **extensions: Any) -> GraphQLError:
    return GraphQLError(message, extensions={"code": code, **extensions})


def problem_to_error(exc: ProblemError) -> GraphQLError:
    code = exc.default_code.upper().replace("-", "_")
    extensions: dict[str, Any] = dict(exc.extra)
    if isinstance(exc, DependencyUnavailable):
        code = "UNAVAILABLE"
        extensions["retryAfter"] = exc.retry_after
    return error(str(exc.detail), code, **extensions)
