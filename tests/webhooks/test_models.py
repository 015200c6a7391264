import pytest
from django.db import IntegrityError, transaction
from django.utils import timezone

from tests.rules.factories import RuleFactory
from tests.webhooks.factories import DeliveryAttemptFactory, DeliveryFactory
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db


def test_one_delivery_per_event_and_subscription_without_a_rule():
    delivery = DeliveryFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        DeliveryFactory(event_id=delivery.event_id, subscription=delivery.subscription)


def test_one_delivery_per_event_subscription_and_rule():
    rule = RuleFactory()
    delivery = DeliveryFactory(rule=rule)
    # the same pair without the rule, or through another rule, is another delivery
    DeliveryFactory(event_id=delivery.event_id, subscription=delivery.subscription)
    DeliveryFactory(
        event_id=delivery.event_id, subscription=delivery.subscription, rule=RuleFactory()
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        DeliveryFactory(event_id=delivery.event_id, subscription=delivery.subscription, rule=rule)
    assert Delivery.objects.filter(event_id=delivery.event_id).count() == 3


def test_the_same_id_from_another_source_is_another_event():
    delivery = DeliveryFactory(event_source="/shop")
    DeliveryFactory(
        event_id=delivery.event_id, event_source="/billing", subscription=delivery.subscription
    )
    assert Delivery.objects.filter(event_id=delivery.event_id).count() == 2


def test_bulk_create_ignoring_conflicts_adds_nothing_on_replay():
    delivery = DeliveryFactory()
    again = Delivery(
        event_id=delivery.event_id,
        event_source=delivery.event_source,
        event_type=delivery.event_type,
        subscription=delivery.subscription,
    )
    Delivery.objects.bulk_create([again], ignore_conflicts=True)
    assert Delivery.objects.count() == 1


def test_a_succeeded_delivery_needs_its_delivery_time():
    delivery = DeliveryFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.SUCCEEDED)
    Delivery.objects.filter(pk=delivery.pk).update(
        status=Delivery.Status.SUCCEEDED, delivered_at=timezone.now()
    )
    delivery.refresh_from_db()
    assert delivery.is_final


def test_the_database_refuses_an_unknown_status():
    with pytest.raises(IntegrityError), transaction.atomic():
        DeliveryFactory(status="lost")


def test_a_subscription_with_deliveries_cannot_be_deleted():
    from django.db.models import ProtectedError

    delivery = DeliveryFactory()
    with pytest.raises(ProtectedError):
        delivery.subscription.delete()


def test_attempt_numbers_are_unique_per_delivery():
    attempt = DeliveryAttemptFactory(number=1)
    assert attempt.succeeded
    with pytest.raises(IntegrityError), transaction.atomic():
        DeliveryAttemptFactory(delivery=attempt.delivery, number=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        DeliveryAttemptFactory(number=0)
