import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from events.models import EventType
from tests.events.factories import EventTypeFactory

pytestmark = pytest.mark.django_db


def test_a_valid_event_type_passes_clean():
    event_type = EventTypeFactory.build(name="payment.failed")
    event_type.full_clean()


def test_it_rejects_a_schema_that_is_not_json_schema():
    event_type = EventTypeFactory.build(schema={"type": "no-such-type"})
    with pytest.raises(ValidationError) as caught:
        event_type.full_clean()
    assert "schema" in caught.value.message_dict


def test_it_rejects_an_example_that_fails_the_schema_naming_the_pointer():
    event_type = EventTypeFactory.build(example={"amount": -3})
    with pytest.raises(ValidationError) as caught:
        event_type.full_clean()
    (message,) = caught.value.message_dict["example"]
    assert message.startswith("/amount:")
    assert "minimum" in message


@pytest.mark.parametrize("name", ["Payment.Failed", "payment..failed", ".x", "payment failed"])
def test_it_rejects_names_that_are_not_dotted_lowercase(name):
    with pytest.raises(ValidationError):
        EventTypeFactory.build(name=name).full_clean()


def test_the_database_refuses_a_bad_name_even_without_clean():
    with pytest.raises(IntegrityError), transaction.atomic():
        EventType.objects.create(name="Not A Name")


def test_the_database_refuses_zero_retention():
    with pytest.raises(IntegrityError), transaction.atomic():
        EventType.objects.create(name="a.b", retention_days=0)


def test_names_are_unique():
    EventTypeFactory(name="order.created")
    with pytest.raises(IntegrityError), transaction.atomic():
        EventType.objects.create(name="order.created")


def test_the_schema_version_rises_only_when_the_schema_changes():
    event_type = EventTypeFactory()
    assert event_type.schema_version == 1

    event_type.description = "new words"
    event_type.save()
    event_type.refresh_from_db()
    assert event_type.schema_version == 1

    event_type.schema = {**event_type.schema, "additionalProperties": False}
    event_type.save(update_fields=["schema"])
    event_type.refresh_from_db()
    assert event_type.schema_version == 2
