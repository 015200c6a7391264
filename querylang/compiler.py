"""Queries compiled once into closures; evaluating one against a document walks no query
structure. ``compile_query`` gives the predicate the pipeline runs on stored events."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from operator import ge, gt, le, lt
from typing import Any, NamedTuple

from bson.int64 import Int64

from querylang.ordering import bracket, equal, is_number, normalise_date, order
from querylang.paths import MISSING, THROUGH_ARRAY, Reached, plain_value, position, reach
from querylang.validation import (
    LOGICAL,
    QueryError,
    is_elem_match_list,
    is_operator_document,
    is_value_condition,
    validate_query,
)

# --- evaluation -----------------------------------------------------------------------------------
# Queries are compiled once into closures; evaluating one against a document walks no query
# structure. The semantics are those of mongod's matcher, checked against a real mongod by
# tests/querylang/test_conformance.py:
#
# - A dotted path reaches a list of values. Sub-documents are entered by name. An array met
#   before the path ends is crossed: the rest of the path is looked up in every element that is
#   a sub-document, and a part that is an array position ("items.0") also picks that element.
#   A path running into a scalar reaches "missing"; one crossing an array reaches only what its
#   elements give, which may be nothing.
# - Where a path ends at an array (by name, not by position), most operators try the array as a
#   whole and each of its elements; $size, $elemMatch and $exists take it only as a whole.
# - Each operator of a condition is tried on its own: {"$gt": 1, "$lt": 5} holds for [0, 9].
# - $ne, $nin, $not and {"$exists": false} negate the positive test over everything the path
#   reaches: {"$ne": 5} holds when no value reached equals 5.
# - Comparisons hold only within a type bracket (numbers with numbers, strings with strings,
#   dates with dates; booleans are not numbers; arrays and sub-documents in BSON's order).
#   Equality with null, $in with null and $gte/$lte null also hold for a missing field.

Predicate = Callable[[Any], bool]


class _Condition(NamedTuple):
    """A field condition compiled twice: ``single`` tests one value as it is (what a path
    without arrays reaches, or one element for ``$elemMatch``), ``reached`` tests everything a
    path through arrays reached."""

    single: Predicate
    reached: Callable[[Reached], bool]


def _leaf(single: Predicate, *, into_arrays: bool = True) -> _Condition:
    if not into_arrays:
        return _Condition(single, lambda reached: any(single(value) for value, _ in reached))

    def on_reached(reached: Reached) -> bool:
        for value, ends_array in reached:
            if single(value):
                return True
            if ends_array:
                for element in value:
                    if single(element):
                        return True
        return False

    return _Condition(single, on_reached)


def _negated(condition: _Condition) -> _Condition:
    single, reached = condition
    return _Condition(lambda value: not single(value), lambda values: not reached(values))


def _all_of(conditions: list[_Condition]) -> _Condition:
    if len(conditions) == 1:
        return conditions[0]
    if len(conditions) == 2:
        # the common pair ({"$gte": 10, "$lt": 100}) without a generator per call
        (first_single, first_reached), (second_single, second_reached) = conditions
        return _Condition(
            lambda value: first_single(value) and second_single(value),
            lambda values: first_reached(values) and second_reached(values),
        )
    singles = [condition.single for condition in conditions]
    reacheds = [condition.reached for condition in conditions]
    return _Condition(
        lambda value: all(single(value) for single in singles),
        lambda values: all(reached(values) for reached in reacheds),
    )


def _field_test(key: str, condition: _Condition) -> Predicate:
    """A predicate over documents for one path and its condition. The common case, a path
    through sub-documents only, looks the value up and tests it once, without building a list."""
    single, reached = condition
    if "." not in key:

        def test_field(document: dict[str, Any]) -> bool:
            value = document.get(key, MISSING)
            if isinstance(value, list):
                return reached([(value, True)])
            return single(value)

        return test_field

    parts = key.split(".")
    positions = [position(part) for part in parts]

    def test_path(document: dict[str, Any]) -> bool:
        value = plain_value(document, parts)
        if value is THROUGH_ARRAY:
            out: Reached = []
            reach(document, parts, positions, 0, out)
            return reached(out)
        if isinstance(value, list):
            return reached([(value, True)])
        return single(value)

    return test_path


def _equals(operand: Any) -> Predicate:
    """``$eq`` against one value; the scalar cases skip the generic comparison."""
    if isinstance(operand, re.Pattern):
        return _regex(operand)
    if operand is None:
        return lambda value: value is None or value is MISSING
    if isinstance(operand, bool):
        return lambda value: value is operand
    if isinstance(operand, int | float):
        return lambda value: value == operand and is_number(value)
    if isinstance(operand, str):
        return lambda value: value == operand and isinstance(value, str)
    if isinstance(operand, datetime):
        target = normalise_date(operand)
        return lambda value: isinstance(value, datetime) and normalise_date(value) == target
    return lambda value: equal(value, operand)


def _is_in(items: list[Any]) -> Predicate:
    """``$in`` against one value: strings and numbers by a set lookup, the rest one by one."""
    strings = {item for item in items if isinstance(item, str)}
    numbers = {item for item in items if is_number(item)}
    others = [_equals(item) for item in items if not isinstance(item, str) and not is_number(item)]

    def single(value: Any) -> bool:
        if isinstance(value, str):
            if value in strings:
                return True
        elif is_number(value) and value in numbers:
            return True
        return any(test(value) for test in others)

    return single


ORDER_OPERATORS: dict[str, Callable[[Any, Any], bool]] = {
    "$gt": gt,
    "$gte": ge,
    "$lt": lt,
    "$lte": le,
}


def _compares(name: str, operand: Any) -> Predicate:
    """``$gt``, ``$gte``, ``$lt``, ``$lte`` against one value of the operand's bracket."""
    holds = ORDER_OPERATORS[name]
    kind = bracket(operand)
    if kind == "null":
        # null is alone in its bracket, together with "missing"
        if name in ("$gte", "$lte"):
            return lambda value: value is None or value is MISSING
        return lambda value: False
    if kind == "number":
        return lambda value: is_number(value) and holds(value, operand)
    if kind == "string":
        return lambda value: isinstance(value, str) and holds(value, operand)
    if kind == "bool":
        return lambda value: isinstance(value, bool) and holds(value, operand)
    if kind == "date":
        target = normalise_date(operand)
        return lambda value: isinstance(value, datetime) and holds(normalise_date(value), target)
    if kind in ("object", "array"):

        def composite(value: Any) -> bool:
            if bracket(value) != kind:
                return False
            difference = order(value, operand)
            return difference is not None and holds(difference, 0)

        return composite
    return lambda value: False


def _regex(pattern: re.Pattern) -> Predicate:
    return lambda value: isinstance(value, str) and pattern.search(value) is not None


def _flags(options: str) -> int:
    flags = 0
    for letter, flag in (("i", re.I), ("m", re.M), ("s", re.S), ("x", re.X)):
        if letter in options:
            flags |= flag
    return flags


def _is_int32(value: Any) -> bool:
    # pymongo stores a Python int as int32 when it fits; int64 values read back are Int64
    return (
        isinstance(value, int) and not isinstance(value, bool | Int64) and -(2**31) <= value < 2**31
    )


def _is_int64(value: Any) -> bool:
    return isinstance(value, Int64) or (
        isinstance(value, int) and not isinstance(value, bool) and not -(2**31) <= value < 2**31
    )


TYPE_TEST: dict[str, Callable[[Any], bool]] = {
    "double": lambda v: isinstance(v, float),
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "bool": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "int": _is_int32,
    "long": _is_int64,
    "decimal": lambda v: False,
    "number": is_number,
    "date": lambda v: isinstance(v, datetime),
}


# --- operators


def _as_document(array: list) -> dict[str, Any]:
    """An array as ``$elemMatch`` queries it: BSON stores it as a document keyed "0", "1", ..."""
    return {str(index): element for index, element in enumerate(array)}


def _elem_match(operand: dict[str, Any]) -> _Condition:
    if is_value_condition(operand):
        inner = _condition(operand).single
        return _leaf(
            lambda value: isinstance(value, list) and any(inner(element) for element in value),
            into_arrays=False,
        )
    query = _compile(operand)

    def single(value: Any) -> bool:
        if not isinstance(value, list):
            return False
        for element in value:
            if isinstance(element, dict):
                if query(element):
                    return True
            elif isinstance(element, list) and query(_as_document(element)):
                return True
        return False

    return _leaf(single, into_arrays=False)


def _operator(name: str, operand: Any, siblings: dict[str, Any]) -> _Condition | None:
    if name == "$eq":
        return _leaf(_equals(operand))
    if name == "$ne":
        return _negated(_leaf(_equals(operand)))
    if name in ORDER_OPERATORS:
        return _leaf(_compares(name, operand))
    if name == "$in":
        return _leaf(_is_in(operand))
    if name == "$nin":
        return _negated(_leaf(_is_in(operand)))
    if name == "$all":
        if not operand:
            return _leaf(lambda value: False)  # mongod: an empty $all matches nothing
        if is_elem_match_list(operand):
            return _all_of([_elem_match(item["$elemMatch"]) for item in operand])
        return _all_of([_leaf(_equals(item)) for item in operand])
    if name == "$exists":
        exists = _leaf(lambda value: value is not MISSING, into_arrays=False)
        return exists if operand else _negated(exists)
    if name == "$type":
        names = operand if isinstance(operand, list) else [operand]
        tests = [TYPE_TEST[type_name] for type_name in names]
        return _leaf(lambda value: any(test(value) for test in tests))
    if name == "$regex":
        return _leaf(_regex(re.compile(operand, _flags(siblings.get("$options", "")))))
    if name == "$options":
        return None  # read with $regex
    if name == "$size":
        return _leaf(
            lambda value: isinstance(value, list) and len(value) == operand, into_arrays=False
        )
    if name == "$not":
        if isinstance(operand, str):
            return _negated(_leaf(_regex(re.compile(operand))))
        return _negated(_condition(operand))
    if name == "$elemMatch":
        return _elem_match(operand)
    raise QueryError(name, f"unknown operator {name}")


def _condition(condition: Any) -> _Condition:
    """A field's condition: an operator document, or a literal to be equal to."""
    if not is_operator_document(condition):
        return _leaf(_equals(condition))
    compiled = [_operator(name, operand, condition) for name, operand in condition.items()]
    return _all_of([each for each in compiled if each is not None])


def _compile(query: dict[str, Any]) -> Predicate:
    tests: list[Predicate] = []
    for key, value in query.items():
        if key in LOGICAL:
            parts = [_compile(sub) for sub in value]
            if key == "$and":
                tests.append(lambda doc, parts=parts: all(p(doc) for p in parts))
            elif key == "$or":
                tests.append(lambda doc, parts=parts: any(p(doc) for p in parts))
            else:
                tests.append(lambda doc, parts=parts: not any(p(doc) for p in parts))
        else:
            tests.append(_field_test(key, _condition(value)))
    if len(tests) == 1:
        return tests[0]
    return lambda doc: all(test(doc) for test in tests)


def compile_query(query: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """Validate ``query`` once and return a predicate over documents."""
    validate_query(query)
    return _compile(query)


def matches(query: dict[str, Any], document: dict[str, Any]) -> bool:
    return compile_query(query)(document)
