"""GraphQL over the real services: the same roles as REST, errors with codes, bounded queries."""

from __future__ import annotations

import json

import pytest
from django.conf import settings

from accounts.models import AuditLog
from analytics.rollups import rollups_add
from core import mongo
from core.documents import event_document
from subscriptions.models import Subscription
from tests.helpers import find_in_topic
from tests.subscriptions.factories import SubscriptionFactory
from tests.webhooks.factories import DeliveryFactory
from webhooks.models import Delivery

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("event_type", "clean_redis")]


def gql(client, query: str, caller_headers: dict, **variables) -> dict:
    response = client.post(
        "/graphql",
        json.dumps({"query": query, "variables": variables}),
        content_type="application/json",
        **caller_headers,
    )
    assert response.status_code in (200, 400), response.content
    return response.json()


def codes(result: dict) -> list[str]:
    return [e["extensions"]["code"] for e in result.get("errors", [])]


PUBLISH = """mutation($input: PublishEventInput!) {
  publishEvent(input: $input) { id status } }"""
OPERATIONS = {
    "events": ("{ events(limit: 5) { id } }", {}, "reader"),
    "event": ('{ event(id: "x") { id } }', {}, "reader"),
    "lastEvents": ("{ lastEvents(limit: 3) { id } }", {}, "reader"),
    "eventTypes": ("{ eventTypes { name } }", {}, "reader"),
    "subscriptions": ("{ subscriptions { id } }", {}, "reader"),
    "deliveries": ("{ deliveries { id } }", {}, "reader"),
    "aggregatedMetrics": ("{ aggregatedMetrics(minutes: 5) { eventCount } }", {}, "reader"),
    "analyticsSummary": ('{ analyticsSummary(since: "1h") { total } }', {}, "reader"),
    "analyticsTimeseries": ("{ analyticsTimeseries { bucket } }", {}, "reader"),
    "analyticsTopErrors": ("{ analyticsTopErrors { count } }", {}, "reader"),
    "analyticsUserActivity": ("{ analyticsUserActivity { subject } }", {}, "reader"),
    "analyticsFunnel": (
        '{ analyticsFunnel(steps: ["a", "b"]) { steps { subjects } } }',
        {},
        "reader",
    ),
    "pipelineLag": ("{ pipelineLag { lag } }", {}, "reader"),
    "pipelineStats": ("{ pipelineStats { eventsPerSecond lastBatch { at } } }", {}, "reader"),
    "publishEvent": (
        PUBLISH,
        {"input": {"type": "payment.failed", "data": {"amount": 1, "currency": "EUR"}}},
        "writer",
    ),
    "createSubscription": (
        'mutation { createSubscription(subscriber: "s", url: "http://127.0.0.1:9/h", '
        'eventTypes: ["payment.*"]) { secret } }',
        {},
        "admin",
    ),
    "pauseSubscription": (
        'mutation { pauseSubscription(id: "0") { subscription { id } } }',
        {},
        "admin",
    ),
    "resumeSubscription": (
        'mutation { resumeSubscription(id: "0") { subscription { id } } }',
        {},
        "admin",
    ),
    "retryDelivery": ('mutation { retryDelivery(id: "0") { delivery { id } } }', {}, "admin"),
}
RANK = {"reader": 1, "writer": 2, "admin": 3}


@pytest.mark.parametrize("caller", ["anonymous", "reader", "writer", "admin", "expired", "forged"])
@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_role_matrix(client, credentials, caller, operation, mongo_db):
    query, variables, least = OPERATIONS[operation]
    result = gql(client, query, credentials[caller], **variables)
    if caller in ("anonymous", "expired", "forged"):
        assert codes(result) == ["UNAUTHENTICATED"]
    elif RANK[caller] < RANK[least]:
        assert codes(result) == ["FORBIDDEN"]
    else:
        assert not {"UNAUTHENTICATED", "FORBIDDEN"} & set(codes(result)), result
        assert set(codes(result)) <= {"NOT_FOUND"}, result


def test_publish_event_reaches_kafka(client, credentials):
    result = gql(
        client,
        PUBLISH,
        credentials["writer"],
        input={
            "type": "payment.failed",
            "subject": "u-9",
            "data": {"amount": 2, "currency": "EUR"},
        },
    )
    event_id = result["data"]["publishEvent"]["id"]
    assert result["data"]["publishEvent"]["status"] == "accepted"
    (message,) = find_in_topic(settings.KAFKA_TOPIC_EVENTS, {event_id})[event_id]
    assert json.loads(message.value())["subject"] == "u-9"


def test_an_invalid_event_has_a_code_and_pointers(client, credentials):
    result = gql(
        client,
        PUBLISH,
        credentials["writer"],
        input={"type": "payment.failed", "data": {"amount": "lots"}},
    )
    (problem,) = result["errors"]
    assert problem["extensions"]["code"] == "INVALID_EVENT"
    pointers = {e["pointer"] for e in problem["extensions"]["errors"]}
    assert pointers == {"/data/amount", "/data/currency"}


def test_events_and_metrics_read_mongodb(client, credentials, mongo_db):
    from datetime import UTC, datetime

    now = datetime.now(tz=UTC).isoformat()
    envelopes = [
        {
            "id": f"g-{i}",
            "source": "/s",
            "type": "payment.failed",
            "time": now,
            "data": {"amount": 10 * i, "currency": "EUR"},
        }
        for i in range(1, 4)
    ]
    documents = [event_document(e, retention_days=1) for e in envelopes]
    mongo_db[mongo.EVENTS].insert_many(documents)
    rollups_add(documents)  # as the pipeline counts them
    result = gql(
        client,
        """{ lastEvents(limit: 2) { id data }
        aggregatedMetrics(minutes: 10) { totalAmount eventCount timeWindow { minutes } }
        event(id: "g-2") { type source } }""",
        credentials["reader"],
    )
    data = result["data"]
    assert len(data["lastEvents"]) == 2
    assert data["aggregatedMetrics"] == {
        "totalAmount": 60.0,
        "eventCount": 3,
        "timeWindow": {"minutes": 10},
    }
    assert data["event"] == {"type": "payment.failed", "source": "/s"}


def test_subscriptions_are_created_paused_and_resumed(client, credentials):
    created = gql(
        client,
        """mutation($filter: GenericScalar) { createSubscription(
        subscriber: "crm", url: "http://127.0.0.1:9000/hook", eventTypes: ["order.*"],
        filter: $filter) { secret subscription { id state eventTypes filter } } }""",
        credentials["admin"],
        filter={"amount": {"$gt": 1}},
    )
    assert "errors" not in created, created
    payload = created["data"]["createSubscription"]
    assert payload["secret"].startswith("whsec_")
    sub_id = payload["subscription"]["id"]
    assert payload["subscription"]["filter"] == {"amount": {"$gt": 1}}
    subscription = Subscription.objects.get(pk=sub_id)
    assert subscription.secrets.get().secret == payload["secret"]

    paused = gql(
        client,
        f'mutation {{ pauseSubscription(id: "{sub_id}", reason: "deploy") '
        "{ subscription { state stateReason } } }",
        credentials["admin"],
    )
    assert paused["data"]["pauseSubscription"]["subscription"] == {
        "state": "PAUSED",
        "stateReason": "deploy",
    }
    resumed = gql(
        client,
        f'mutation {{ resumeSubscription(id: "{sub_id}") {{ subscription {{ state }} }} }}',
        credentials["admin"],
    )
    assert resumed["data"]["resumeSubscription"]["subscription"]["state"] == "ACTIVE"
    assert AuditLog.objects.filter(object_id=sub_id).count() == 3


def test_a_private_url_is_refused_with_a_code(client, credentials, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    result = gql(
        client,
        'mutation { createSubscription(subscriber: "x", '
        'url: "http://10.0.0.1/h", eventTypes: ["a.b"]) { secret } }',
        credentials["admin"],
    )
    (problem,) = result["errors"]
    assert problem["extensions"]["code"] == "INVALID_SUBSCRIPTION"
    assert problem["extensions"]["errors"][0]["pointer"] == "/url"


def test_retry_delivery_requeues_a_dead_delivery_once(client, credentials):
    delivery = DeliveryFactory(status=Delivery.Status.DEAD)
    query = f'mutation {{ retryDelivery(id: "{delivery.pk}") {{ delivery {{ status }} }} }}'
    first = gql(client, query, credentials["admin"])
    assert first["data"]["retryDelivery"]["delivery"]["status"] == "PENDING"
    second = gql(client, query, credentials["admin"])
    assert codes(second) == ["DELIVERY_NOT_RETRYABLE"]
    listed = gql(client, '{ deliveries(status: "pending") { id } }', credentials["reader"])
    assert listed["data"]["deliveries"] == [{"id": str(delivery.pk)}]


def test_subscriptions_never_expose_secrets(client, credentials):
    SubscriptionFactory()
    result = gql(
        client, '{ __type(name: "Subscription") { fields { name } } }', credentials["reader"]
    )
    names = {field["name"] for field in result["data"]["__type"]["fields"]}
    assert "secrets" not in names and "url" in names


def test_deep_queries_are_refused(client, credentials, settings):
    settings.GRAPHQL_MAX_DEPTH = 3
    from eventhub.graphql import EventHubGraphQLView  # noqa: F401 - rules read settings per view

    deep = "{ subscriptions { subscriber { subscriptions { subscriber { name } } } } }"
    response = client.post(
        "/graphql",
        json.dumps({"query": deep}),
        content_type="application/json",
        **credentials["reader"],
    )
    assert response.status_code == 400
    assert "exceeds maximum operation depth" in response.json()["errors"][0]["message"]
    assert codes(response.json()) == ["QUERY_TOO_COMPLEX"]


def test_wide_queries_are_refused(client, credentials):
    wide = "{ " + " ".join(f"a{i}: eventTypes {{ name }}" for i in range(150)) + " }"
    response = client.post(
        "/graphql",
        json.dumps({"query": wide}),
        content_type="application/json",
        **credentials["reader"],
    )
    assert response.status_code == 400
    assert codes(response.json()) == ["QUERY_TOO_COMPLEX"]


def test_deep_introspection_is_refused_with_the_documented_code(client, settings):
    settings.GRAPHQL_MAX_DEPTH = 4
    deep = "{ __schema { types { fields { type { ofType { ofType { ofType { name } } } } } } } }"
    response = client.post("/graphql", json.dumps({"query": deep}), content_type="application/json")
    assert response.status_code == 400
    assert codes(response.json()) == ["QUERY_TOO_COMPLEX"]
    shallow = "{ __schema { queryType { name } } }"
    answer = client.post(
        "/graphql", json.dumps({"query": shallow}), content_type="application/json"
    )
    assert answer.json()["data"]["__schema"]["queryType"]["name"] == "Query"


def test_depth_through_fragments_counts(client, credentials, settings):
    settings.GRAPHQL_MAX_DEPTH = 3
    query = (
        "fragment S on Subscription { subscriber { subscriptions { subscriber { name } } } }"
        " { subscriptions { ...S } }"
    )
    response = client.post(
        "/graphql",
        json.dumps({"query": query}),
        content_type="application/json",
        **credentials["reader"],
    )
    assert response.status_code == 400
    assert codes(response.json()) == ["QUERY_TOO_COMPLEX"]


def test_a_forged_token_is_refused_with_a_sentence(client, credentials):
    result = gql(client, "{ events(limit: 1) { id } }", credentials["forged"])
    (problem,) = result["errors"]
    assert problem["extensions"]["code"] == "UNAUTHENTICATED"
    assert problem["message"].startswith("Given token not valid for any token type: Token is")
