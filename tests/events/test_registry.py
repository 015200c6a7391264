import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from events.models import EventType
from events.registry import EventTypeRegistry, compile_check

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


# --- compiled checks against jsonschema --------------------------------------------------------

NAMES = ["a", "b", "c"]
TYPES = ["array", "boolean", "integer", "null", "number", "object", "string"]
numbers_ = st.one_of(st.integers(-5, 5), st.floats(allow_nan=True, allow_infinity=True))
json_values = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        numbers_,
        st.text(max_size=4),
        st.text(alphabet="aAbBXYZ1é", max_size=4),  # strings the patterns match, or nearly
    ),
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.sampled_from(NAMES), children)
    ),
    max_leaves=12,
)
leaf_keywords = {
    "type": st.one_of(st.sampled_from(TYPES), st.lists(st.sampled_from(TYPES), max_size=3)),
    "minimum": numbers_,
    "maximum": numbers_,
    "exclusiveMinimum": numbers_,
    "exclusiveMaximum": numbers_,
    "minLength": st.integers(0, 4),
    "maxLength": st.integers(0, 4),
    "minItems": st.integers(0, 4),
    "maxItems": st.integers(0, 4),
    "required": st.lists(st.sampled_from(NAMES), max_size=3),
    "enum": st.lists(st.text(max_size=2), max_size=3),
    "pattern": st.sampled_from(["^a", "b$", "^[A-Z]{3}$", "a|b", r"\d", "", "^$", "é"]),
    "title": st.text(max_size=3),
}
schemas = st.recursive(
    st.one_of(st.booleans(), st.fixed_dictionaries({}, optional=leaf_keywords)),
    lambda children: st.fixed_dictionaries(
        {},
        optional={
            **leaf_keywords,
            "properties": st.dictionaries(st.sampled_from(NAMES), children, max_size=3),
            "additionalProperties": children,
            "items": children,
        },
    ),
    max_leaves=8,
)


@settings(max_examples=600, deadline=None)
@given(schema=schemas, data=st.lists(json_values, min_size=1, max_size=5))
def test_compiled_checks_answer_as_jsonschema_does(schema, data):
    check = compile_check(schema)
    assert check is not None
    validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
    for each in data:
        assert check(each) is validator.is_valid(each), (schema, each)


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "string", "format": "email"},  # formats are asserted
        {"pattern": "["},  # not a regular expression
        {"pattern": 3},
        {"properties": {"a": {"$ref": "#/$defs/x"}}, "$defs": {"x": {"type": "string"}}},
        {"properties": {"a": {"$schema": "http://json-schema.org/draft-04/schema#"}}},
        {"enum": [1, True]},  # jsonschema's own equality
        {"type": "decimal"},
        {"patternProperties": {"^x": {}}, "additionalProperties": False},
    ],
)
def test_other_keywords_are_left_to_jsonschema(schema):
    assert compile_check(schema) is None


def test_a_type_with_an_uncompiled_schema_still_reports_its_errors():
    registry = EventTypeRegistry()
    EventType.objects.create(name="a.b", schema={"type": "object", "required": ["email"]})
    EventType.objects.create(
        name="a.c",
        schema={"type": "object", "properties": {"email": {"type": "string", "format": "email"}}},
    )
    compiled = registry.get("a.b")
    assert compiled.is_valid({"email": "x"}) and not compiled.is_valid({})
    assert compiled.errors({}) == [
        {"pointer": "/data/email", "detail": "'email' is a required property"}
    ]
    assert registry.get("a.c").errors({"email": "nope"})[0]["pointer"] == "/data/email"
    assert registry.get("a.c").errors({"email": "a@example.com"}) == []
