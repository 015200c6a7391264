import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tests.rules.factories import RuleFactory

pytestmark = pytest.mark.django_db


def test_a_threshold_needs_count_and_window_in_the_database():
    with pytest.raises(IntegrityError), transaction.atomic():
        RuleFactory(threshold_count=3, threshold_window_seconds=None)


def test_a_complete_threshold_is_stored():
    rule = RuleFactory(threshold_count=3, threshold_window_seconds=600, threshold_key="user_id")
    rule.full_clean()
    assert rule.threshold_count == 3


def test_clean_checks_conditions_and_each_action():
    rule = RuleFactory.build(
        conditions={"amount": {"$gt": "x", "$nope": 1}},
        actions=[{"type": "deliver"}, {"type": "publish", "topic": ""}, {"type": "shout"}],
    )
    with pytest.raises(ValidationError) as caught:
        rule.full_clean()
    errors = caught.value.message_dict
    assert errors["conditions"] == ["amount/$nope: unknown operator $nope"]
    assert errors["actions"] == [
        "/0: deliver needs a subscription id",
        "/1: publish needs a topic",
        "/2: type must be one of deliver, notify, publish",
    ]


def test_rules_are_ordered_by_priority():
    RuleFactory(name="late", priority=200)
    RuleFactory(name="early", priority=1)
    from rules.models import Rule

    assert [r.name for r in Rule.objects.all()] == ["early", "late"]
