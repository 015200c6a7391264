"""The gRPC ``EventService``: the REST ingest path behind another door.

Parsing (``events.envelope``), validation, de-duplication and publishing
(``events.services.events_publish``) and authentication (``accounts.authentication``) are the
very ones REST uses; this module only translates messages and errors.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from concurrent import futures
from typing import Any

import grpc
from django.conf import settings
from django.db import close_old_connections
from rest_framework import exceptions

from accounts.authentication import has_role, principal_id, user_from_headers
from core import strict_json
from core.correlation import given_request_id, request_context
from core.documents import document_to_event
from core.pagination import InvalidCursor
from core.problems import DEPENDENCY_ERRORS, DependencyUnavailable, detail_text
from events.envelope import EnvelopeError, from_document
from events.grpc_api import eventhub_pb2 as pb
from events.grpc_api import eventhub_pb2_grpc as pb_grpc
from events.selectors import EventFilters, events_list
from events.services import (
    Door,
    PublishOutcome,
    PublishStatus,
    RejectReason,
    events_publish,
    events_rejected,
    outcomes_tally,
)

logger = logging.getLogger(__name__)


class Refused(Exception):
    """End the call with a status code (raised inside handlers, turned into ``abort``)."""

    def __init__(self, code: grpc.StatusCode, message: str, **trailers: str):
        super().__init__(message)
        self.code, self.message, self.trailers = code, message, trailers


def authenticate(context: grpc.ServicerContext, minimum: str):
    """The caller behind the metadata's credentials, if their role is at least ``minimum``."""
    metadata = {key.lower(): value for key, value in context.invocation_metadata()}
    try:
        user = user_from_headers(metadata)
    except exceptions.AuthenticationFailed as exc:
        raise Refused(grpc.StatusCode.UNAUTHENTICATED, detail_text(exc)) from exc
    if user is None:
        raise Refused(
            grpc.StatusCode.UNAUTHENTICATED, "Authentication credentials were not provided."
        )
    if not has_role(user, minimum):
        raise Refused(grpc.StatusCode.PERMISSION_DENIED, f"This needs the {minimum} role.")
    return user


def _json_field(text: str, pointer: str) -> Any:
    if not text:
        return None
    try:
        return strict_json.loads(text)
    except ValueError as exc:
        raise EnvelopeError.at(pointer, f"is not valid JSON: {exc}") from exc


def proto_document(event: pb.Event) -> dict[str, Any]:
    """The proto event as the JSON document REST would have received."""
    data = _json_field(event.data_json, "/data_json")
    metadata = _json_field(event.metadata_json, "/metadata_json")
    if event.specversion:
        names = (
            "id",
            "source",
            "type",
            "specversion",
            "time",
            "subject",
            "partitionkey",
            "traceid",
            "sessionid",
        )
        document: dict[str, Any] = {n: getattr(event, n) for n in names if getattr(event, n)}
        if data is not None:
            document["data"] = data
    else:
        pairs = {
            "event_type": event.event_type,
            "user_id": event.user_id,
            "id": event.id,
            "source": event.source,
            "timestamp": event.time,
            "trace_id": event.traceid,
            "session_id": event.sessionid,
            "partition_key": event.partitionkey,
        }
        document = {name: value for name, value in pairs.items() if value}
        if event.type and "event_type" not in document:
            document["event_type"] = event.type
        if event.HasField("amount"):
            document["amount"] = event.amount
        if data is not None:
            document["data"] = data
    if event.severity:
        document["severity"] = event.severity
    if metadata is not None:
        document["metadata"] = metadata
    return document


def result_message(outcome: PublishOutcome, sequence: int = 0) -> pb.PublishResult:
    return pb.PublishResult(
        id=outcome.id or "",
        status=outcome.status.value,
        errors=[pb.FieldError(pointer=e["pointer"], detail=e["detail"]) for e in outcome.errors],
        sequence=sequence,
    )


def parse(events: list[pb.Event], user) -> list[tuple[dict | None, PublishOutcome | None]]:
    source = f"eventhub:{principal_id(user)}"
    parsed: list[tuple[dict | None, PublishOutcome | None]] = []
    for event in events:
        try:
            parsed.append((from_document(proto_document(event), default_source=source), None))
        except EnvelopeError as exc:
            events_rejected(RejectReason.UNREADABLE)
            parsed.append(
                (None, PublishOutcome(PublishStatus.INVALID, event.id or None, exc.errors))
            )
    return parsed


def publish(events: list[pb.Event], user, *, wait: bool = True) -> list[PublishOutcome]:
    """Outcomes in order; invalid forms are answered without reaching the ingest service."""
    parsed = parse(events, user)
    envelopes = [envelope for envelope, _ in parsed if envelope is not None]
    published = iter(
        events_publish(envelopes=envelopes, wait=wait, door=Door.GRPC) if envelopes else []
    )
    return [outcome if outcome is not None else next(published) for _, outcome in parsed]


def guarded(minimum: str):
    """Authenticate, run the handler and turn domain and dependency errors into statuses."""

    def decorate(handler):
        def wrapper(self, request, context):
            close_old_connections()
            metadata = dict(context.invocation_metadata() or ())
            try:
                with request_context(given_request_id(metadata.get("x-request-id"))):
                    user = authenticate(context, minimum)
                    return handler(self, request, context, user)
            except Refused as exc:
                _abort(context, exc)
            except DependencyUnavailable as exc:
                _abort(context, _unavailable(str(exc.detail), exc.retry_after))
            except DEPENDENCY_ERRORS as exc:
                logger.warning("dependency unavailable: %s", exc)
                _abort(context, _unavailable("A dependency is unavailable.", 5))
            finally:
                close_old_connections()

        wrapper.__name__ = handler.__name__
        return wrapper

    return decorate


def _unavailable(message: str, retry_after: int | None) -> Refused:
    return Refused(grpc.StatusCode.UNAVAILABLE, message, **{"retry-after": str(retry_after or 5)})


def _abort(context: grpc.ServicerContext, refusal: Refused) -> None:
    if refusal.trailers:
        context.set_trailing_metadata(tuple(refusal.trailers.items()))
    context.abort(refusal.code, refusal.message)


class EventService(pb_grpc.EventServiceServicer):
    @guarded("writer")
    def CreateEvent(self, request: pb.CreateEventRequest, context, user) -> pb.PublishResult:
        (outcome,) = publish([request.event], user, wait=not request.no_wait)
        if outcome.status == PublishStatus.INVALID:
            raise Refused(
                grpc.StatusCode.INVALID_ARGUMENT,
                "; ".join(f"{e['pointer']}: {e['detail']}" for e in outcome.errors),
                errors=json.dumps(outcome.errors),
            )
        if outcome.status == PublishStatus.DUPLICATE:
            outcome.status = PublishStatus.ACCEPTED  # the first answer, as REST gives it
        return result_message(outcome)

    @guarded("writer")
    def CreateEvents(self, request: pb.CreateEventsRequest, context, user):
        limit = settings.INGEST_MAX_BATCH_EVENTS
        if not request.events or len(request.events) > limit:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, f"Send 1 to {limit} events.")
        outcomes = publish(list(request.events), user)
        count = outcomes_tally(outcomes)
        return pb.CreateEventsResponse(
            accepted=count[PublishStatus.ACCEPTED],
            duplicates=count[PublishStatus.DUPLICATE],
            invalid=count[PublishStatus.INVALID],
            failed=count[PublishStatus.FAILED],
            results=[result_message(o) for o in outcomes],
        )

    def StreamEvents(self, request_iterator: Iterator[pb.StreamRequest], context):
        close_old_connections()
        try:
            user = authenticate(context, "writer")
        except Refused as exc:
            _abort(context, exc)
            return
        for item in request_iterator:
            try:
                (outcome,) = publish([item.event], user)
            except DependencyUnavailable as exc:
                _abort(context, _unavailable(str(exc.detail), exc.retry_after))
                return
            except DEPENDENCY_ERRORS:
                _abort(context, _unavailable("A dependency is unavailable.", 5))
                return
            yield result_message(outcome, item.sequence)

    @guarded("reader")
    def GetEvents(self, request: pb.GetEventsRequest, context, user) -> pb.GetEventsResponse:
        from datetime import datetime

        try:
            since = datetime.fromisoformat(request.since) if request.since else None
            until = datetime.fromisoformat(request.until) if request.until else None
        except ValueError as exc:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, f"since/until: {exc}") from exc
        limit = request.limit or 50
        if not 1 <= limit <= 500:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, "limit must be from 1 to 500.")
        filters = EventFilters(
            type=request.type or None,
            source=request.source or None,
            subject=request.subject or None,
            since=since,
            until=until,
        )
        try:
            documents, cursor = events_list(
                filters=filters, limit=limit, cursor=request.cursor or None
            )
        except InvalidCursor as exc:
            raise Refused(grpc.StatusCode.INVALID_ARGUMENT, str(exc.detail)) from exc
        stored = []
        for document in documents:
            event = document_to_event(document)
            stored.append(
                pb.StoredEvent(
                    id=event["id"],
                    type=event["type"],
                    source=event["source"],
                    subject=event["subject"] or "",
                    time=event["time"] or "",
                    severity=event["severity"] or 0,
                    data_json=json.dumps(event["data"]),
                    metadata_json=json.dumps(event["metadata"]),
                    received_at=event["received_at"] or "",
                )
            )
        return pb.GetEventsResponse(events=stored, next_cursor=cursor or "")


def build_server(address: str, *, workers: int = 16, others: tuple = ()) -> tuple[grpc.Server, int]:
    """A server of ``EventService`` and the services ``others`` add (callables given the
    server) for ``address`` (``host:port``; port 0 picks a free one), and its port."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=workers))
    pb_grpc.add_EventServiceServicer_to_server(EventService(), server)
    for add in others:
        add(server)
    port = server.add_insecure_port(address)
    return server, port
