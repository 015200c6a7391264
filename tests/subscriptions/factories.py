import factory

from core.signing import generate_secret
from subscriptions.models import SigningSecret, Subscriber, Subscription


class SubscriberFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscriber

    name = factory.Sequence(lambda n: f"Subscriber {n}")
    contact_email = factory.Sequence(lambda n: f"team{n}@example.com")


class SubscriptionFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Subscription

    subscriber = factory.SubFactory(SubscriberFactory)
    name = factory.Sequence(lambda n: f"Hook {n}")
    url = factory.Sequence(lambda n: f"http://127.0.0.1:9/hooks/{n}")
    event_types = factory.LazyFunction(lambda: ["payment.*"])


class SigningSecretFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = SigningSecret

    subscription = factory.SubFactory(SubscriptionFactory)
    secret = factory.LazyFunction(generate_secret)
