"""One error shape for the whole API: RFC 7807 problem details (``application/problem+json``).

DRF views get it through ``problem_exception_handler`` (``REST_FRAMEWORK["EXCEPTION_HANDLER"]``);
plain Django views, the 400/403/404/500 handlers and middleware build it with
``problem_response``; ``ApiProblemMiddleware`` turns any other error answer under ``/api/`` into
one.
Domain errors subclass ``ProblemError`` so they carry their own status, code and title; they
know nothing of DRF, GraphQL or gRPC. Each door maps them in one place: REST here, GraphQL in
``core.graphql.problem_to_error``, gRPC in ``events.grpc_api.server``.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

import redis
from django.core.exceptions import NON_FIELD_ERRORS, RequestDataTooBig
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import OperationalError
from django.http import Http404, JsonResponse
from pymongo.errors import ConnectionFailure, ServerSelectionTimeoutError
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler, set_rollback

logger = logging.getLogger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"
PROBLEM_BASE = "https://eventhub.dev/problems/"


class ProblemError(Exception):
    """A domain error, rendered as problem details by each door.

    Subclasses set ``status_code`` (the HTTP status it stands for), ``default_code`` (the
    problem ``type`` slug) and ``default_detail``; ``retry_after`` (seconds) adds a
    ``Retry-After`` header. ``extra`` holds more members of the problem (``errors``, ...).
    """

    status_code: int = HTTPStatus.BAD_REQUEST
    default_code = "bad-request"
    default_detail = "The request could not be processed."
    title = "Bad request"
    retry_after: int | None = None

    def __init__(self, detail: str | None = None, *, extra: dict[str, Any] | None = None):
        self.detail = str(detail) if detail is not None else self.default_detail
        self.extra = extra or {}
        super().__init__(self.detail)

    def __str__(self) -> str:
        return self.detail


class DependencyUnavailable(ProblemError):
    """A dependency (Kafka, MongoDB, Redis, PostgreSQL) did not answer: try again later."""

    status_code = HTTPStatus.SERVICE_UNAVAILABLE
    default_code = "dependency-unavailable"
    default_detail = "A service EventHub depends on is unavailable. Try again shortly."
    title = "Service unavailable"
    retry_after = 5


class Unprocessable(ProblemError):
    """Well formed and of the right types, but refused by rules no schema states: a model's
    ``clean()`` (conditions that do not compile, an example its schema refuses, ...)."""

    status_code = HTTPStatus.UNPROCESSABLE_ENTITY
    default_code = "unprocessable"
    default_detail = "The request is well formed but breaks the resource's rules."
    title = "Refused by the resource's rules"


def field_errors(exc: DjangoValidationError) -> list[dict[str, str]]:
    """A model's validation errors as the problem's ``errors`` (JSON pointers)."""
    return [
        {"pointer": "/" if field == NON_FIELD_ERRORS else f"/{field}", "detail": message}
        for field, messages in exc.message_dict.items()
        for message in messages
    ]


class PayloadTooLarge(ProblemError):
    status_code = HTTPStatus.REQUEST_ENTITY_TOO_LARGE
    default_code = "payload-too-large"
    default_detail = "The body is too large."
    title = "Payload too large"


# Errors that mean a dependency is down: the caller should retry, so 503, not 500.
DEPENDENCY_ERRORS = (
    redis.ConnectionError,
    redis.TimeoutError,
    ConnectionFailure,
    ServerSelectionTimeoutError,
    OperationalError,
)


def problem_body(
    status_code: int, title: str, detail: str, code: str, **extra: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_BASE + code,
        "title": title,
        "status": status_code,
        "detail": detail,
    }
    body.update(extra)
    return body


def problem_response(
    status_code: int,
    title: str,
    detail: str,
    code: str,
    *,
    retry_after: int | None = None,
    **extra: Any,
) -> JsonResponse:
    """A problem+json response for views outside DRF."""
    response = JsonResponse(
        problem_body(status_code, title, detail, code, **extra),
        status=status_code,
        content_type=PROBLEM_CONTENT_TYPE,
    )
    if retry_after is not None:
        response["Retry-After"] = str(retry_after)
    return response


def detail_text(exc: exceptions.APIException) -> str:
    """The sentence of a DRF exception: simplejwt's carry a dict (``detail``, ``code``,
    ``messages``) whose repr is no message for a person."""
    detail = exc.detail
    if isinstance(detail, dict) and "detail" in detail:
        reasons = []  # why each token class refused it ("Token is expired")
        for message in detail.get("messages") or []:
            reason = str(message.get("message", "")) if isinstance(message, dict) else ""
            if reason and reason not in reasons:
                reasons.append(reason)
        return str(detail["detail"]) + (f": {'; '.join(reasons)}" if reasons else "")
    if isinstance(detail, list) and len(detail) == 1:
        return str(detail[0])
    return str(detail)


def _codes(data: Any) -> set[str]:
    if isinstance(data, dict):
        return set().union(*(_codes(value) for value in data.values()))
    if isinstance(data, list):
        return set().union(*(_codes(value) for value in data))
    return {str(data)}


# Invalid fields whose only fault is the state of other rows: the request is well formed.
CONFLICT_CODES = {"unique"}  # a name already taken: 409
# an id that names no row, or a rule no schema states (``ValidationError(..., code=RULE)``:
# two parameters that exclude each other, a window too long): 422
MISSING_REFERENCE_CODES = {"does_not_exist"}
RULE = "rule"


def flatten_errors(data: Any, pointer: str = "") -> list[dict[str, str]]:
    """Turn DRF's nested validation errors into ``[{"pointer": "/field/0", "detail": ...}]``."""
    if isinstance(data, dict):
        errors: list[dict[str, str]] = []
        for key, value in data.items():
            sub = pointer if key == "non_field_errors" else f"{pointer}/{key}"
            errors.extend(flatten_errors(value, sub))
        return errors
    if isinstance(data, list):
        if all(not isinstance(item, dict | list) for item in data):
            return [{"pointer": pointer or "/", "detail": str(item)} for item in data]
        errors = []
        for index, value in enumerate(data):
            errors.extend(flatten_errors(value, f"{pointer}/{index}"))
        return errors
    return [{"pointer": pointer or "/", "detail": str(data)}]


def problem_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler producing problem details for every API error."""
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    if isinstance(exc, RequestDataTooBig):
        exc = PayloadTooLarge("The body is larger than this server accepts.")
    if isinstance(exc, DEPENDENCY_ERRORS):
        logger.warning("dependency unavailable: %s: %s", type(exc).__name__, exc)
        exc = DependencyUnavailable()
    if isinstance(exc, ProblemError):
        return _problem_error_response(exc)
    response = exception_handler(exc, context)
    if response is None:
        # Not an API exception: let Django's 500 handler (problem+json too) take it.
        return None

    code = getattr(exc, "default_code", "error")
    if isinstance(exc, exceptions.APIException):
        codes = exc.get_codes()
        if isinstance(codes, str):
            code = codes
    title = getattr(exc, "title", None) or response.status_text
    extra: dict[str, Any] = dict(getattr(exc, "extra", {}) or {})
    if isinstance(exc, exceptions.ValidationError):
        code = "validation-error"
        title = "Invalid request"
        detail = "The request has invalid fields."
        extra["errors"] = flatten_errors(exc.detail)
        codes = _codes(exc.get_codes())
        if codes and codes <= CONFLICT_CODES:
            response.status_code, code, title = 409, "conflict", "Conflict"
            detail = "It conflicts with what exists (errors name the fields)."
        elif codes and codes <= MISSING_REFERENCE_CODES:
            response.status_code, code, title = 422, "unknown-reference", "Unknown reference"
            detail = "It refers to something that does not exist (errors name the fields)."
        elif codes and codes <= MISSING_REFERENCE_CODES | {RULE}:
            response.status_code, code, title = 422, Unprocessable.default_code, Unprocessable.title
            detail = "The request is well formed but breaks a rule (errors name the fields)."
    else:
        detail = detail_text(exc) if isinstance(exc, exceptions.APIException) else str(exc)
    body = problem_body(response.status_code, title, detail, str(code).replace("_", "-"), **extra)
    if isinstance(exc, exceptions.Throttled) and exc.wait is not None:
        response["Retry-After"] = str(int(exc.wait) + 1)
    response.data = body
    response.content_type = PROBLEM_CONTENT_TYPE
    return response


def _problem_error_response(exc: ProblemError) -> Response:
    set_rollback()  # as DRF does for its own exceptions: a failed request writes nothing
    body = problem_body(int(exc.status_code), exc.title, exc.detail, exc.default_code, **exc.extra)
    response = Response(body, status=int(exc.status_code), content_type=PROBLEM_CONTENT_TYPE)
    if exc.retry_after is not None:
        response["Retry-After"] = str(exc.retry_after)
    return response


# What a problem says when all that is known is its status (Django's own pages, a plain view).
GENERIC_DETAILS = {
    400: "The request could not be processed (a malformed request or a Host this server does "
    "not answer to).",
    403: "This request is not allowed.",
    404: "No resource at this address.",
    405: "This method is not allowed here.",
    413: "The body is larger than this server accepts.",
    500: "An unexpected error occurred; it has been logged.",
}
# Headers of the replaced answer that still hold for the problem that replaces it.
KEPT_HEADERS = ("Allow", "Retry-After", "WWW-Authenticate", "X-Request-ID")
API_PREFIX = "/api/"


def status_problem(status_code: int) -> JsonResponse:
    """The problem of a bare status: its phrase as title and type, a generic detail."""
    try:
        phrase = HTTPStatus(status_code).phrase
    except ValueError:
        phrase = "Error"
    detail = GENERIC_DETAILS.get(status_code, f"{phrase}.")
    return problem_response(status_code, phrase, detail, phrase.lower().replace(" ", "-"))


class ApiProblemMiddleware:
    """Every error answer under ``/api/`` in the problem shape, whoever produced it.

    DRF views answer problems already; this catches what answers before or beside them:
    Django's 404 for unknown paths and for ids a route's pattern refuses, its 400 for a
    ``Host`` not in ``ALLOWED_HOSTS``, and its debug pages when ``DEBUG`` is on.
    """

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            response.status_code < 400
            or not request.path_info.startswith(API_PREFIX)
            or response.get("Content-Type", "").startswith(PROBLEM_CONTENT_TYPE)
        ):
            return response
        problem = status_problem(response.status_code)
        for name in KEPT_HEADERS:
            if response.has_header(name):
                problem[name] = response[name]
        return problem


def handler400(request, exception=None) -> JsonResponse:  # noqa: ARG001 - Django's signature
    return status_problem(400)


def handler403(request, exception=None) -> JsonResponse:  # noqa: ARG001 - Django's signature
    return status_problem(403)


def handler404(request, exception=None) -> JsonResponse:  # noqa: ARG001 - Django's signature
    return status_problem(404)


def handler500(request) -> JsonResponse:  # noqa: ARG001 - Django's signature
    return problem_response(500, "Server error", GENERIC_DETAILS[500], "server-error")
