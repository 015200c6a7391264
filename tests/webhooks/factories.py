import uuid

import factory

from tests.subscriptions.factories import SubscriptionFactory
from webhooks.models import Delivery, DeliveryAttempt


class DeliveryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Delivery

    event_id = factory.LazyFunction(lambda: str(uuid.uuid4()))
    event_source = "/test"  # what the store_event fixture stores
    event_type = "payment.failed"
    subscription = factory.SubFactory(SubscriptionFactory)


class DeliveryAttemptFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = DeliveryAttempt

    delivery = factory.SubFactory(DeliveryFactory)
    number = factory.Sequence(lambda n: n + 1)
    response_status = 200
    duration_ms = 12
