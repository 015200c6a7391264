"""Rules CRUD and backtest over REST, and the admin's backtest action."""

import json
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse

from core import mongo
from core.documents import event_document
from tests.rules.factories import RuleFactory

pytestmark = pytest.mark.django_db

RULE = {
    "name": "big payments",
    "conditions": {"payload.amount": {"$gte": 100}},
    "actions": [{"type": "notify", "message": "look"}],
}


def post(client, url, body, headers):
    return client.post(url, json.dumps(body), content_type="application/json", **headers)


def test_readers_list_and_only_admins_change(client, credentials):
    RuleFactory()
    assert client.get("/api/v1/rules", **credentials["reader"]).status_code == 200
    assert post(client, "/api/v1/rules", RULE, credentials["writer"]).status_code == 403
    created = post(client, "/api/v1/rules", RULE, credentials["admin"])
    assert created.status_code == 201, created.content
    assert created.json()["conditions"] == RULE["conditions"]


def test_invalid_conditions_are_refused_with_the_fault(client, credentials):
    body = {**RULE, "conditions": {"payload.amount": {"$gte": 1, "$bogus": 2}}}
    response = post(client, "/api/v1/rules", body, credentials["admin"])
    # well formed JSON of the right types: refused by the rule's own rules, 422
    assert response.status_code == 422
    (error,) = response.json()["errors"]
    assert error["pointer"] == "/conditions"
    assert "payload.amount/$bogus: unknown operator" in error["detail"]


def _store(db, amounts, days_ago=0):
    moment = (datetime.now(tz=UTC) - timedelta(days=days_ago)).isoformat()
    db[mongo.EVENTS].insert_many(
        [
            event_document(
                {
                    "id": f"bt-{days_ago}-{i}",
                    "source": "/s",
                    "type": "payment.failed",
                    "time": moment,
                    "data": {"amount": amount},
                },
                retention_days=30,
            )
            for i, amount in enumerate(amounts)
        ]
    )


def test_backtest_counts_with_mongodb_saved_or_draft(client, credentials, mongo_db):
    _store(mongo_db, [5, 150, 300, 99])
    _store(mongo_db, [500], days_ago=20)  # outside a 7-day window
    rule = RuleFactory(conditions=RULE["conditions"])
    url = f"/api/v1/rules/{rule.pk}/backtest"
    saved = post(client, url, {"days": 7}, credentials["admin"]).json()
    assert (saved["matched"], saved["total"]) == (2, 4)
    draft = post(
        client,
        url,
        {"days": 30, "conditions": {"payload.amount": {"$lt": 10}}},
        credentials["admin"],
    ).json()
    assert (draft["matched"], draft["total"]) == (1, 5)
    bad = post(client, url, {"conditions": {"$where": "1"}}, credentials["admin"])
    assert bad.status_code == 422  # an object, as the schema asks, that does not compile
    assert bad.json()["errors"][0]["pointer"] == "/conditions"


def test_the_admin_backtest_action_reports_counts(admin_client_logged_in, mongo_db):
    _store(mongo_db, [150, 1])
    rule = RuleFactory(conditions=RULE["conditions"])
    response = admin_client_logged_in.post(
        reverse("admin:rules_rule_changelist"),
        {"action": "backtest", "_selected_action": [rule.pk]},
        follow=True,
    )
    assert "1 of 2 events of the last 7 days" in response.content.decode()
