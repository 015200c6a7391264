"""The rule admin: conditions refused with the fault's path, the backtest count over the real
MongoDB and the latest matches on the change page."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from django.urls import reverse

from rules.models import RuleMatch
from tests.rules.factories import RuleFactory

pytestmark = pytest.mark.django_db


def test_the_change_page_shows_the_backtest_count_and_the_latest_matches(
    admin_client_logged_in, store_event
):
    now = datetime.now(tz=UTC).isoformat()
    for amount in [1, 20, 30]:
        store_event(time=now, data={"amount": amount})
    store_event(time=now, type="order.created")
    rule = RuleFactory(conditions={"type": "payment.failed", "payload.amount": {"$gt": 10}})
    RuleMatch.objects.create(
        rule=rule,
        event_id="e-42",
        event_source="/test",
        event_type="payment.failed",
        notification="look at e-42",
    )
    url = reverse("admin:rules_rule_change", args=[rule.pk])
    page = admin_client_logged_in.get(url).content.decode()
    assert "2 of 4 events of the last 7 days match its conditions" in page
    assert "e-42" in page and "look at e-42" in page
    assert f"?rule__id__exact={rule.pk}" in page


def test_conditions_with_a_fault_are_refused_naming_its_path(admin_client_logged_in):
    rule = RuleFactory()
    url = reverse("admin:rules_rule_change", args=[rule.pk])
    response = admin_client_logged_in.post(
        url,
        {
            "name": rule.name,
            "conditions": json.dumps({"$and": [{"type": "a.b"}, {"payload.n": {"$in": 3}}]}),
            "actions": json.dumps(rule.actions),
            "priority": 100,
            "enabled": "on",
        },
    )
    assert response.status_code == 200
    assert "$and/1/payload.n/$in: $in takes a list" in response.content.decode()
