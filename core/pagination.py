"""The one page shape of every list in the API: ``{"results": [...], "next": cursor}``.

``next`` is an opaque cursor (not a URL), ``null`` on the last page; the next page is the same
request with ``?cursor=<next>``. ``limit`` (1 to 500, default 50) sets the page size. A cursor
the API did not give out answers 404 (the page it names does not exist), as DRF's cursors do.
DRF lists get this from ``CursorPage`` (the default pagination class); the events list, read
from MongoDB, builds the same shape with its own cursor and ``InvalidCursor``.
"""

from __future__ import annotations

from base64 import b64encode
from typing import Any
from urllib import parse

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.pagination import CursorPagination
from rest_framework.response import Response

from core.fields import QueryIntegerField
from core.problems import ProblemError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500


class InvalidCursor(ProblemError):
    status_code = 404
    default_code = "invalid-cursor"
    default_detail = "The cursor is not one this API gave out."
    title = "Invalid cursor"


def page_schema(results: dict[str, Any]) -> dict[str, Any]:
    """The OpenAPI schema of a page whose items are ``results`` (an array schema)."""
    return {
        "type": "object",
        "required": ["results", "next"],
        "properties": {
            "results": results,
            "next": {
                "type": "string",
                "nullable": True,
                "description": "Cursor of the next page (`?cursor=`); null on the last page.",
            },
        },
    }


def parameters_schema() -> list[dict[str, Any]]:
    """The OpenAPI parameters of every list: ``cursor`` and ``limit``."""
    return [
        {
            "name": "cursor",
            "required": False,
            "in": "query",
            "description": "The `next` of the previous page.",
            "schema": {"type": "string"},
        },
        {
            "name": "limit",
            "required": False,
            "in": "query",
            "description": f"Items per page: 1 to {MAX_LIMIT}, default {DEFAULT_LIMIT}.",
            "schema": {"type": "integer", "minimum": 1, "maximum": MAX_LIMIT},
        },
    ]


class CursorPage(CursorPagination):
    """DRF's cursor pagination in the API's page shape; ``ordering`` must be unique (``id``)."""

    ordering = ("id",)
    page_size = DEFAULT_LIMIT
    page_size_query_param = "limit"
    max_page_size = MAX_LIMIT

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        field = QueryIntegerField(min_value=1, max_value=MAX_LIMIT)
        try:
            return field.run_validation(raw)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({self.page_size_query_param: exc.detail}) from exc

    def paginate_queryset(self, queryset, request, view=None):
        try:
            # a forged cursor may carry a position of the wrong type for the ordering field
            return super().paginate_queryset(queryset, request, view)
        except (NotFound, ValueError, TypeError, DjangoValidationError) as exc:
            raise InvalidCursor() from exc

    def encode_cursor(self, cursor) -> str:
        """The bare cursor: DRF's encoding without the URL around it."""
        tokens = {}
        if cursor.offset != 0:
            tokens["o"] = str(cursor.offset)
        if cursor.reverse:
            tokens["r"] = "1"
        if cursor.position is not None:
            tokens["p"] = cursor.position
        return b64encode(parse.urlencode(tokens, doseq=True).encode("ascii")).decode("ascii")

    def get_paginated_response(self, data) -> Response:
        return Response({"results": data, "next": self.get_next_link()})

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return page_schema(schema)

    def get_schema_operation_parameters(self, view) -> list[dict[str, Any]]:
        return parameters_schema()
