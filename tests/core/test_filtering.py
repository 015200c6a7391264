"""The lists' filters take what the schema promises and refuse the rest."""

import pytest

from tests.subscriptions.factories import SubscriptionFactory

pytestmark = pytest.mark.django_db


def ids(response) -> list[int]:
    assert response.status_code == 200, response.content
    return [item["id"] for item in response.json()["results"]]


def test_a_boolean_filter_takes_true_or_false(client, credentials):
    ordered = SubscriptionFactory(ordered=True)
    SubscriptionFactory(ordered=False)
    reader = credentials["reader"]
    assert ids(client.get("/api/v1/subscriptions", {"ordered": "true"}, **reader)) == [ordered.pk]
    for value in ("null", "maybe", ""):
        refused = client.get("/api/v1/subscriptions", {"ordered": value}, **reader)
        assert refused.status_code == 400, value
        assert refused.json()["errors"][0]["pointer"] == "/ordered"


def test_an_id_filter_naming_no_row_matches_nothing(client, credentials):
    subscription = SubscriptionFactory()
    reader = credentials["reader"]
    query = {"subscriber": subscription.subscriber_id}
    assert ids(client.get("/api/v1/subscriptions", query, **reader)) == [subscription.pk]
    assert ids(client.get("/api/v1/subscriptions", {"subscriber": 0}, **reader)) == []
    assert ids(client.get("/api/v1/subscriptions", {"subscriber": 2**70}, **reader)) == []
    for value in ("", "x", "1.5", "1.0"):
        refused = client.get("/api/v1/subscriptions", {"subscriber": value}, **reader)
        assert refused.status_code == 400, value


def test_an_empty_choice_is_refused_but_an_empty_text_is_a_value(client, credentials):
    reader = credentials["reader"]
    assert client.get("/api/v1/subscriptions", {"state": ""}, **reader).status_code == 400
    assert client.get("/api/v1/subscribers", {"name": ""}, **reader).status_code == 200


@pytest.mark.parametrize("limit", ["0", "501", "1.0", "", "ten"])
def test_a_page_size_the_schema_does_not_allow_is_a_400(client, credentials, limit):
    response = client.get("/api/v1/subscriptions", {"limit": limit}, **credentials["reader"])
    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "/limit"
