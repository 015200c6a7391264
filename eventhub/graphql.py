"""The GraphQL endpoint: the same authentication and roles as REST, errors with codes, and
bounds on query depth and size.

Every error carries ``extensions.code``: ``UNAUTHENTICATED``, ``FORBIDDEN``, ``INVALID_EVENT``
(with ``errors`` naming JSON pointers), ``BAD_INPUT``, ``NOT_FOUND``, ``UNAVAILABLE`` (with
``retryAfter``) or ``QUERY_TOO_COMPLEX``.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponseBadRequest
from django.utils.decorators import method_decorator
from django.views.decorators.csrf import csrf_exempt
from graphene_django.views import GraphQLView, HttpError
from graphql import FieldNode, FragmentDefinitionNode, FragmentSpreadNode, ValidationRule
from rest_framework import exceptions
from rest_framework.request import Request
from rest_framework.settings import api_settings

from core import strict_json
from core.graphql import error
from core.problems import detail_text


class DepthLimit(ValidationRule):
    """Refuse operations nested deeper than ``GRAPHQL_MAX_DEPTH``, introspection fields and
    fragments included (graphene's own validator leaves ``__schema`` and ``__type`` out, so an
    introspection query could nest as deep as it liked)."""

    def enter_operation_definition(self, node, *args):
        fragments = {
            definition.name.value: definition
            for definition in self.context.document.definitions
            if isinstance(definition, FragmentDefinitionNode)
        }
        maximum = settings.GRAPHQL_MAX_DEPTH
        if self._depth(node.selection_set, fragments, 0, maximum, set()) > maximum:
            name = node.name.value if node.name else "anonymous"
            self.report_error(
                error(
                    f"'{name}' exceeds maximum operation depth of {maximum}.",
                    "QUERY_TOO_COMPLEX",
                )
            )

    def _depth(self, selection_set, fragments, depth, maximum, seen) -> int:
        if selection_set is None or depth > maximum:
            return depth
        deepest = depth
        for selection in selection_set.selections:
            if isinstance(selection, FieldNode):
                # as graphene counts: a field with a selection adds a level, a leaf none
                if selection.selection_set is None:
                    found = depth
                else:
                    found = self._depth(
                        selection.selection_set, fragments, depth + 1, maximum, seen
                    )
            elif isinstance(selection, FragmentSpreadNode):
                name = selection.name.value
                if name in seen or name not in fragments:
                    continue  # a cycle or an unknown fragment: other rules report those
                found = self._depth(
                    fragments[name].selection_set, fragments, depth, maximum, seen | {name}
                )
            else:  # an inline fragment
                found = self._depth(selection.selection_set, fragments, depth, maximum, seen)
            deepest = max(deepest, found)
        return deepest


class FieldCountLimit(ValidationRule):
    """Refuse documents selecting more than ``GRAPHQL_MAX_FIELDS`` fields in all."""

    def __init__(self, context):
        super().__init__(context)
        self.count = 0

    def enter_field(self, node, *args):
        self.count += 1
        if self.count == settings.GRAPHQL_MAX_FIELDS + 1:
            self.report_error(
                error(
                    f"The query selects more than {settings.GRAPHQL_MAX_FIELDS} fields.",
                    "QUERY_TOO_COMPLEX",
                )
            )


@method_decorator(csrf_exempt, name="dispatch")
class EventHubGraphQLView(GraphQLView):
    """graphene-django's view, authenticating the caller with the REST API's authenticators."""

    graphiql = True

    def __init__(self, **kwargs):
        kwargs.setdefault(
            "validation_rules",
            [DepthLimit, FieldCountLimit],
        )
        super().__init__(**kwargs)

    def dispatch(self, request: HttpRequest, *args, **kwargs):
        drf_request = Request(
            request, authenticators=[cls() for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES]
        )
        try:
            request.user = drf_request.user
        except exceptions.AuthenticationFailed as exc:
            request.eventhub_auth_error = detail_text(exc)
        return super().dispatch(request, *args, **kwargs)

    def parse_body(self, request: HttpRequest) -> Any:
        """graphene-django's, with JSON bodies read strictly (``core.strict_json``): NaN
        and bodies nested too deep to read are a 400, as other malformed JSON is."""
        if self.get_content_type(request) == "application/json":
            try:
                strict_json.loads(request.body)
            except UnicodeDecodeError as exc:
                raise HttpError(HttpResponseBadRequest(str(exc))) from exc
            except ValueError as exc:
                raise HttpError(
                    HttpResponseBadRequest(f"POST body sent invalid JSON: {exc}")
                ) from exc
        return super().parse_body(request)

    @staticmethod
    def format_error(error_: Exception) -> dict[str, Any]:
        formatted = GraphQLView.format_error(error_)
        formatted.setdefault("extensions", {}).setdefault("code", "BAD_REQUEST")
        return formatted
