"""REST views of the events API: publish (sync, async, batch), list, get, search, event types."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status, viewsets
from rest_framework.exceptions import NotFound, ParseError, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts.authentication import principal_id
from accounts.permissions import IsReader, IsWriter, ReadOrAdmin
from accounts.throttling import PublishRateThrottle, ReadRateThrottle
from core import strict_json
from core.api import problems
from core.correlation import current_request_id, new_request_id
from core.documents import document_to_event
from core.problems import PayloadTooLarge, ProblemError
from core.redis import get_redis
from events.api.serializers import (
    BatchResultSerializer,
    EventInSerializer,
    EventOutSerializer,
    EventPageSerializer,
    EventQuerySerializer,
    EventTypeSerializer,
    PublishResultSerializer,
    SearchQuerySerializer,
)
from events.envelope import EnvelopeError, from_binary, from_document, from_structured
from events.models import EventType
from events.registry import registry
from events.selectors import EventFilters, event_get, events_list, events_search
from events.services import (
    Door,
    EventInvalid,
    PublishOutcome,
    PublishStatus,
    RejectReason,
    events_publish,
    events_rejected,
    outcomes_tally,
)

CE_JSON = "application/cloudevents+json"
CE_BATCH = "application/cloudevents-batch+json"


class IdempotencyKeyReused(ProblemError):
    status_code = status.HTTP_422_UNPROCESSABLE_ENTITY
    default_code = "idempotency-key-reused"
    title = "Idempotency-Key reused"
    default_detail = "This Idempotency-Key was used for a different request."


def request_id(request: Request) -> str:
    """The request's id (``X-Request-ID``, or the one the middleware made up)."""
    return current_request_id() or new_request_id()


def default_source(request: Request) -> str:
    return f"eventhub:{principal_id(request.user)}"


def read_body(request: Request, limit: int) -> bytes:
    declared = request.META.get("CONTENT_LENGTH")
    if declared and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
    body = request.body
    if len(body) > limit:
        raise PayloadTooLarge(f"The body is larger than {limit} bytes.")
    return body


def parse_json(body: bytes) -> Any:
    try:
        return strict_json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ParseError(f"The body is not valid JSON: {exc}") from exc


def media_type(request: Request) -> str:
    return request.content_type.split(";")[0].strip().lower()


def read_single(request: Request, body: bytes) -> dict[str, Any]:
    """The one event of a request, in any accepted form; ``EventInvalid`` when unreadable."""
    source = default_source(request)
    try:
        if "ce-specversion" in request.headers and media_type(request) != CE_JSON:
            data = parse_json(body) if body else None
            return from_binary(
                request.headers, data, content_type=media_type(request), default_source=source
            )
        return from_document(parse_json(body), default_source=source)
    except EnvelopeError as exc:
        events_rejected(RejectReason.UNREADABLE)
        raise EventInvalid("The event cannot be read.", extra={"errors": exc.errors}) from exc


class IdempotencyKey:
    """Replays the stored answer of a request repeated with the same ``Idempotency-Key``."""

    def __init__(self, request: Request, body: bytes):
        header = request.headers.get("Idempotency-Key")
        self.key = None
        if header:
            digest = hashlib.sha256(header.encode()).hexdigest()
            self.key = f"eventhub:idem-key:{principal_id(request.user)}:{request.path}:{digest}"
            self.fingerprint = hashlib.sha256(body).hexdigest()

    def replay(self) -> Response | None:
        if self.key is None:
            return None
        stored = get_redis().get(self.key)
        if stored is None:
            return None
        record = json.loads(stored)
        if record["fingerprint"] != self.fingerprint:
            raise IdempotencyKeyReused()
        return Response(
            record["body"], status=record["status"], headers={"Idempotent-Replayed": "true"}
        )

    def store(self, response: Response) -> Response:
        if self.key is not None and response.status_code < 500:
            record = {
                "fingerprint": self.fingerprint,
                "status": response.status_code,
                "body": response.data,
            }
            get_redis().set(self.key, json.dumps(record), ex=settings.IDEMPOTENCY_WINDOW_SECONDS)
        return response


def single_response(outcome: PublishOutcome, rid: str) -> Response:
    if outcome.status == PublishStatus.INVALID:
        raise EventInvalid(extra={"errors": outcome.errors})
    headers = {"X-Request-ID": rid}
    if outcome.status == PublishStatus.DUPLICATE:
        headers["Idempotent-Replayed"] = "true"
    # A duplicate gets the first answer: the event id, accepted.
    body = {"id": outcome.id, "status": PublishStatus.ACCEPTED.value}
    return Response(body, status=202, headers=headers)


PUBLISH_RESPONSES = {
    202: PublishResultSerializer,
    **problems(
        s400="Malformed body",
        s401="Not authenticated",
        s403="Role not allowed",
        s413="Body too large",
        s422="Invalid event (errors name JSON pointers)",
        s429="Rate limited (Retry-After)",
        s503="Broker unavailable (Retry-After)",
    ),
}
PUBLISH_PARAMETERS = [
    OpenApiParameter(
        "Idempotency-Key",
        str,
        OpenApiParameter.HEADER,
        description="Repeats within the window get the first answer.",
    ),
    OpenApiParameter("mode", str, enum=["sync", "async"], description="async: answer at once."),
]


def waits_for_broker(request: Request) -> bool:
    """``mode=sync`` (the default) or ``mode=async``; any other mode is a 400."""
    mode = request.query_params.get("mode", "sync")
    if mode not in ("sync", "async"):
        raise ValidationError({"mode": ['Use "sync" or "async".']})
    return mode == "sync"


class EventsView(APIView):
    """``GET``: list stored events (reader). ``POST``: publish one event (writer)."""

    body_required = True  # ProblemAutoSchema: a POST without a body is refused

    def get_permissions(self):
        return [IsWriter()] if self.request.method == "POST" else [IsReader()]

    def get_throttles(self):
        return [PublishRateThrottle()] if self.request.method == "POST" else [ReadRateThrottle()]

    @extend_schema(
        operation_id="events_publish",
        summary="Publish one event",
        description=(
            "CloudEvents structured JSON (`application/cloudevents+json`), binary mode "
            "(`ce-*` headers with the data as body) or the flat form. Answers 202 once the "
            "broker acknowledged it (acks=all), or at once with `mode=async`."
        ),
        request={"application/json": EventInSerializer, CE_JSON: EventInSerializer},
        parameters=PUBLISH_PARAMETERS,
        responses=PUBLISH_RESPONSES,
    )
    def post(self, request: Request) -> Response:
        return self.publish(request, wait=waits_for_broker(request))

    def publish(self, request: Request, *, wait: bool) -> Response:
        body = read_body(request, settings.INGEST_MAX_EVENT_BYTES)
        idempotency = IdempotencyKey(request, body)
        replayed = idempotency.replay()
        if replayed is not None:
            return replayed
        rid = request_id(request)
        envelope = read_single(request, body)
        (outcome,) = events_publish(envelopes=[envelope], wait=wait, door=Door.REST, request_id=rid)
        return idempotency.store(single_response(outcome, rid))

    @extend_schema(
        operation_id="events_list",
        summary="List stored events, newest first",
        parameters=[EventQuerySerializer],
        responses={200: EventPageSerializer, **problems(s400="Invalid query", s503="MongoDB down")},
    )
    def get(self, request: Request) -> Response:
        # a plain dict: DRF reads "" in a QueryDict as "not given", the schema calls it invalid
        query = EventQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        params = query.validated_data
        filters = EventFilters(
            type=params.get("type"),
            source=params.get("source"),
            subject=params.get("subject") or params.get("user_id"),
            severity_min=params.get("severity_min"),
            severity_max=params.get("severity_max"),
            since=params.get("since"),
            until=params.get("until"),
        )
        documents, cursor = events_list(
            filters=filters, limit=params["limit"], cursor=params.get("cursor")
        )
        return Response({"results": [document_to_event(d) for d in documents], "next": cursor})


class EventsAsyncView(EventsView):
    """Publish one event and answer as soon as the producer holds it."""

    http_method_names = ["post", "options"]

    @extend_schema(
        operation_id="events_publish_async",
        summary="Publish one event without waiting for the broker",
        request={"application/json": EventInSerializer, CE_JSON: EventInSerializer},
        parameters=PUBLISH_PARAMETERS[:1],
        responses=PUBLISH_RESPONSES,
    )
    def post(self, request: Request) -> Response:
        return self.publish(request, wait=False)


# Each item of a batch is judged on its own and answered in the results (an item that is no
# event is "invalid" there, the others go on), so the request takes any JSON values.
BATCH_ITEMS = {
    "type": "array",
    "minItems": 1,
    "maxItems": settings.INGEST_MAX_BATCH_EVENTS,
    "items": {"description": "An event in any single-event form (see EventIn)."},
}


class EventBatchView(APIView):
    permission_classes = [IsWriter]
    throttle_classes = [PublishRateThrottle]
    body_required = True

    @extend_schema(
        operation_id="events_publish_batch",
        summary="Publish up to 1000 events",
        description=(
            'A JSON array of events (any single-event form), `{"events": [...]}`, or a '
            "CloudEvents batch (`application/cloudevents-batch+json`). Each item is answered "
            "on its own (accepted, duplicate, invalid with reasons, failed); the others go on."
        ),
        request={
            "application/json": {
                "oneOf": [
                    BATCH_ITEMS,
                    {
                        "type": "object",
                        "required": ["events"],
                        "properties": {"events": BATCH_ITEMS},
                    },
                ]
            },
            CE_BATCH: BATCH_ITEMS,
        },
        parameters=PUBLISH_PARAMETERS,
        responses={
            200: BatchResultSerializer,
            **{k: v for k, v in PUBLISH_RESPONSES.items() if k != 202},
        },
    )
    def post(self, request: Request) -> Response:
        body = read_body(request, settings.INGEST_MAX_BATCH_BYTES)
        idempotency = IdempotencyKey(request, body)
        replayed = idempotency.replay()
        if replayed is not None:
            return replayed
        rid = request_id(request)
        cloudevents_batch = media_type(request) == CE_BATCH
        items = parse_json(body)
        if isinstance(items, dict) and not cloudevents_batch:
            items = items.get("events")
        if not isinstance(items, list) or not items:
            raise ParseError('Send a non-empty JSON array of events (or {"events": [...]}).')
        limit = settings.INGEST_MAX_BATCH_EVENTS
        if len(items) > limit:
            raise PayloadTooLarge(
                f"A batch holds at most {limit} events; this one has {len(items)}."
            )

        source = default_source(request)
        envelopes: list[dict[str, Any]] = []
        positions: list[int] = []
        outcomes: list[PublishOutcome | None] = []
        for index, item in enumerate(items):
            try:
                if cloudevents_batch:
                    if not isinstance(item, dict):
                        raise EnvelopeError.at("/", "an event must be a JSON object")
                    envelopes.append(from_structured(item, default_source=source))
                else:
                    envelopes.append(from_document(item, default_source=source))
                positions.append(index)
                outcomes.append(None)
            except EnvelopeError as exc:
                given = item.get("id") if isinstance(item, dict) else None
                outcomes.append(
                    PublishOutcome(
                        PublishStatus.INVALID, given, exc.errors, reason=RejectReason.UNREADABLE
                    )
                )
        unreadable = len(outcomes) - len(positions)
        if unreadable:
            events_rejected(RejectReason.UNREADABLE, unreadable)
        wait = waits_for_broker(request)
        for index, outcome in zip(
            positions,
            events_publish(envelopes=envelopes, wait=wait, door=Door.REST, request_id=rid),
            strict=True,
        ):
            outcomes[index] = outcome
        done = [o for o in outcomes if o is not None]
        counts = outcomes_tally(done)
        body = {
            "accepted": counts[PublishStatus.ACCEPTED],
            "duplicates": counts[PublishStatus.DUPLICATE],
            "invalid": counts[PublishStatus.INVALID],
            "failed": counts[PublishStatus.FAILED],
            "results": [o.as_dict() for o in done],
        }
        return idempotency.store(Response(body, status=200, headers={"X-Request-ID": rid}))


class EventDetailView(APIView):
    permission_classes = [IsReader]
    throttle_classes = [ReadRateThrottle]

    @extend_schema(
        operation_id="events_retrieve",
        summary="One stored event",
        description=(
            "An event is its `source` and `id` together: two producers may use one id. "
            "Without `source`, the id must name one stored event; when several sources used "
            "it the answer is 409 with their `sources`."
        ),
        parameters=[
            OpenApiParameter(
                "source",
                str,
                description="The event's source (needed when several sources used the id).",
            )
        ],
        responses={
            200: EventOutSerializer,
            **problems(s404="No such event", s409="Several sources used this id: name one"),
        },
    )
    def get(self, request: Request, event_id: str) -> Response:
        source = request.query_params.get("source")
        document = event_get(event_id, source)
        if document is None:
            where = f" from source {source!r}" if source is not None else ""
            raise NotFound(f"No stored event has the id {event_id!r}{where}.")
        return Response(document_to_event(document))


class EventSearchView(APIView):
    permission_classes = [IsReader]
    throttle_classes = [ReadRateThrottle]

    @extend_schema(
        operation_id="events_search",
        summary="Full-text search over event payloads and metadata",
        parameters=[SearchQuerySerializer],
        responses={200: EventPageSerializer, **problems(s400="Invalid query")},
    )
    def get(self, request: Request) -> Response:
        query = SearchQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        params = query.validated_data
        documents, cursor = events_search(
            text=params["q"], limit=params["limit"], cursor=params.get("cursor")
        )
        return Response({"results": [document_to_event(d) for d in documents], "next": cursor})


class EventTypeViewSet(viewsets.ModelViewSet):
    """Event types: readers list them, admins manage them."""

    queryset = EventType.objects.all()
    serializer_class = EventTypeSerializer
    permission_classes = [ReadOrAdmin]
    throttle_classes = [ReadRateThrottle]
    filterset_fields = ["enabled", "name"]
    lookup_field = "name"
    lookup_value_regex = r"[a-z0-9_.]+"

    def perform_create(self, serializer) -> None:
        serializer.save()
        registry.invalidate()

    def perform_update(self, serializer) -> None:
        serializer.save()
        registry.invalidate()
