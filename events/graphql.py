"""GraphQL queries and mutations of events: stored events, event types, publishing."""

from __future__ import annotations

from datetime import datetime

import graphene
from graphene.types.generic import GenericScalar
from graphene_django import DjangoObjectType

from accounts.authentication import principal_id
from accounts.graphql import require_role
from core.documents import document_to_event
from core.graphql import error
from events.envelope import EnvelopeError, from_document
from events.models import EventType
from events.selectors import EventAmbiguous, EventFilters, event_get, events_list
from events.services import (
    Door,
    EventInvalid,
    PublishStatus,
    RejectReason,
    events_publish,
    events_rejected,
)


class EventTypeNode(DjangoObjectType):
    schema = GenericScalar()
    example = GenericScalar()

    class Meta:
        model = EventType
        name = "EventType"
        fields = [
            "id",
            "name",
            "description",
            "schema",
            "schema_version",
            "enabled",
            "retention_days",
            "example",
            "created_at",
            "updated_at",
        ]


class Event(graphene.ObjectType):
    id = graphene.ID(required=True)
    type = graphene.String(required=True)
    source = graphene.String(required=True)
    subject = graphene.String()
    time = graphene.DateTime()
    severity = graphene.Int()
    data = GenericScalar()
    metadata = GenericScalar()
    traceid = graphene.String()
    sessionid = graphene.String()
    partitionkey = graphene.String()
    received_at = graphene.DateTime()

    @staticmethod
    def from_document(document: dict) -> Event:
        event = document_to_event(document)
        for key in ("time", "received_at"):
            if event[key]:
                event[key] = datetime.fromisoformat(event[key])
        return Event(**event)


MAX_LIMIT = 500


def _check_page(limit: int, offset: int = 0) -> None:
    if not 1 <= limit <= MAX_LIMIT or offset < 0:
        raise error(f"limit must be from 1 to {MAX_LIMIT} and offset not negative.", "BAD_INPUT")


class Query(graphene.ObjectType):
    events = graphene.List(
        graphene.NonNull(Event),
        required=True,
        limit=graphene.Int(default_value=50),
        offset=graphene.Int(default_value=0),
        type=graphene.String(),
        source=graphene.String(),
        since=graphene.DateTime(),
        until=graphene.DateTime(),
    )
    event = graphene.Field(
        Event,
        id=graphene.ID(required=True),
        source=graphene.String(
            description="The event's source: needed when several sources used the id."
        ),
        description="One stored event; an event is its source and id together.",
    )
    last_events = graphene.List(
        graphene.NonNull(Event), required=True, limit=graphene.Int(default_value=10)
    )
    event_types = graphene.List(graphene.NonNull(EventTypeNode), required=True)

    @require_role("reader")
    def resolve_events(root, info, limit, offset, type=None, source=None, since=None, until=None):
        _check_page(limit, offset)
        filters = EventFilters(type=type, source=source, since=since, until=until)
        documents, _ = events_list(filters=filters, limit=limit, offset=offset)
        return [Event.from_document(d) for d in documents]

    @require_role("reader")
    def resolve_event(root, info, id, source=None):
        try:
            document = event_get(id, source)
        except EventAmbiguous as exc:
            raise error(str(exc.detail), "AMBIGUOUS", sources=exc.extra["sources"]) from exc
        return Event.from_document(document) if document else None

    @require_role("reader")
    def resolve_last_events(root, info, limit):
        _check_page(limit)
        documents, _ = events_list(filters=EventFilters(), limit=limit)
        return [Event.from_document(d) for d in documents]

    @require_role("reader")
    def resolve_event_types(root, info):
        return EventType.objects.all()


class PublishEventInput(graphene.InputObjectType):
    type = graphene.String(required=True)
    data = GenericScalar()
    id = graphene.String(description="Unique per source; generated when absent.")
    source = graphene.String()
    subject = graphene.String()
    time = graphene.DateTime()
    severity = graphene.Int()
    partitionkey = graphene.String()
    metadata = GenericScalar()


class PublishEvent(graphene.Mutation):
    """Publish one event; answers once the broker acknowledged it."""

    class Arguments:
        input = PublishEventInput(required=True)

    id = graphene.ID(required=True)
    status = graphene.String(required=True)

    @require_role("writer")
    def mutate(root, info, input):
        document = {key: value for key, value in input.items() if value is not None}
        if "time" in document:
            document["time"] = document["time"].isoformat()
        document["specversion"] = "1.0"
        user = info.context.user
        try:
            envelope = from_document(document, default_source=f"eventhub:{principal_id(user)}")
        except EnvelopeError as exc:
            events_rejected(RejectReason.UNREADABLE)
            raise EventInvalid("The event cannot be read.", extra={"errors": exc.errors}) from exc
        (outcome,) = events_publish(envelopes=[envelope], wait=True, door=Door.GRAPHQL)
        if outcome.status == PublishStatus.INVALID:
            raise EventInvalid(extra={"errors": outcome.errors})
        return PublishEvent(id=outcome.id, status=PublishStatus.ACCEPTED.value)


class Mutation(graphene.ObjectType):
    publish_event = PublishEvent.Field()
