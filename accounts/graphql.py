"""Roles in GraphQL: the resolver decorator that every app's schema uses, on the one role
check of ``accounts.authentication``, with domain errors mapped to GraphQL errors."""

from __future__ import annotations

import functools
from collections.abc import Callable

from rest_framework import exceptions

from accounts.authentication import has_role, role_of
from core.graphql import error, problem_to_error
from core.problems import DEPENDENCY_ERRORS, DependencyUnavailable, ProblemError


def require_role(minimum: str) -> Callable:
    """Resolver decorator: refuse callers whose role is below ``minimum``."""

    def decorate(resolver: Callable) -> Callable:
        @functools.wraps(resolver)
        def wrapper(root, info, *args, **kwargs):
            request = info.context
            auth_error = getattr(request, "eventhub_auth_error", None)
            if auth_error:
                raise error(auth_error, "UNAUTHENTICATED")
            if role_of(request.user) is None:
                raise error("Authentication credentials were not provided.", "UNAUTHENTICATED")
            if not has_role(request.user, minimum):
                raise error(f"This needs the {minimum} role or above.", "FORBIDDEN")
            try:
                return resolver(root, info, *args, **kwargs)
            except ProblemError as exc:
                raise problem_to_error(exc) from exc
            except exceptions.ValidationError as exc:
                raise error("Invalid input.", "BAD_INPUT", errors=exc.detail) from exc
            except DEPENDENCY_ERRORS as exc:
                raise problem_to_error(DependencyUnavailable()) from exc

        return wrapper

    return decorate
