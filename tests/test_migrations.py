"""Migrations of existing data, run backwards and forwards on the real PostgreSQL and MongoDB."""

from __future__ import annotations

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from core import mongo
from rules.models import RuleMatch
from tests.rules.factories import RuleFactory
from tests.subscriptions.factories import SubscriptionFactory
from webhooks.models import Delivery

BEFORE = [("webhooks", "0003_delivery_dead_index"), ("rules", "0002_rule_match")]
AFTER = [("webhooks", "0004_delivery_event_source"), ("rules", "0003_rulematch_event_source")]


def migrate(targets: list[tuple[str, str]]) -> MigrationExecutor:
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor


@pytest.mark.django_db(transaction=True)
def test_rows_written_before_the_event_key_get_their_events_source(mongo_db):
    subscription = SubscriptionFactory()
    rule = RuleFactory()
    executor = migrate(BEFORE)
    try:
        old = executor.loader.project_state(BEFORE).apps
        OldDelivery = old.get_model("webhooks", "Delivery")  # noqa: N806 - a model class
        OldMatch = old.get_model("rules", "RuleMatch")  # noqa: N806
        for event_id in ("e-1", "e-2", "e-gone"):
            OldDelivery.objects.create(
                event_id=event_id, event_type="order.created", subscription_id=subscription.pk
            )
            OldMatch.objects.create(rule_id=rule.pk, event_id=event_id, event_type="order.created")
        OldDelivery.objects.create(
            event_id="test_1",
            event_type="eventhub.test",
            subscription_id=subscription.pk,
            is_test=True,
        )
        # until now MongoDB held one document per id
        mongo_db[mongo.EVENTS].insert_many(
            [{"event_id": "e-1", "source": "/shop"}, {"event_id": "e-2", "source": "/billing"}]
        )
        migrate(AFTER)
    finally:
        executor = MigrationExecutor(connection)
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())

    sources = dict(Delivery.objects.values_list("event_id", "event_source"))
    assert sources == {"e-1": "/shop", "e-2": "/billing", "e-gone": "", "test_1": "eventhub"}
    matches = dict(RuleMatch.objects.values_list("event_id", "event_source"))
    assert matches == {"e-1": "/shop", "e-2": "/billing", "e-gone": ""}
    # the new key admits another producer's event with the same id
    Delivery.objects.create(
        event_id="e-1", event_source="/other", event_type="order.created", subscription=subscription
    )
    assert Delivery.objects.filter(event_id="e-1").count() == 2
