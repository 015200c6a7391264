import pytest

from events.models import EventType
from events.registry import EventTypeRegistry

pytestmark = pytest.mark.django_db


def test_a_schema_change_is_picked_up_and_an_unchanged_one_is_not_recompiled():
    registry = EventTypeRegistry()
    event_type = EventType.objects.create(name="a.b", schema={"type": "object"})
    first = registry.get("a.b")
    assert first.errors([]) and not first.errors({})

    registry.invalidate()
    assert registry.get("a.b").validator is first.validator  # same schema, same validator

    event_type.schema = {"type": "array"}
    event_type.save()
    registry.invalidate()
    assert registry.get("a.b").errors({}) and not registry.get("a.b").errors([])


def test_a_type_created_again_under_the_same_name_gets_its_new_schema():
    registry = EventTypeRegistry()
    EventType.objects.create(name="a.b", schema={"type": "object", "required": ["x"]})
    assert registry.get("a.b").errors({})
    EventType.objects.filter(name="a.b").delete()
    EventType.objects.create(name="a.b", schema={"type": "object"})  # version 1 again
    registry.invalidate()
    assert registry.get("a.b").errors({}) == []


def test_unknown_types_are_none():
    assert EventTypeRegistry().get("no.such") is None
