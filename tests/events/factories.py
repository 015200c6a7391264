import factory

from events.models import EventType


class EventTypeFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = EventType
        django_get_or_create = ["name"]

    name = factory.Sequence(lambda n: f"test.event_{n}")
    description = "An event type made by a test."
    schema = factory.LazyFunction(
        lambda: {
            "type": "object",
            "required": ["amount"],
            "properties": {"amount": {"type": "number", "minimum": 0}},
        }
    )
    example = factory.LazyFunction(lambda: {"amount": 1})
