"""Conditions in MongoDB's query language, used by subscription filters and rule conditions.

``validate_query`` checks that a query is well formed, so a bad filter is refused when it is
saved with a message that points at the fault. ``compile_query`` turns a valid query into a
predicate the pipeline runs against stored event documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from operator import ge, gt, le, lt
from typing import Any, NamedTuple

from bson.int64 import Int64

COMPARISON = {"$eq", "$ne", "$gt", "$gte", "$lt", "$lte"}
LIST_OPERATORS = {"$in", "$nin", "$all"}
LOGICAL = {"$and", "$or", "$nor"}
FIELD_OPERATORS = (
    COMPARISON
    | LIST_OPERATORS
    | {
        "$exists",
        "$type",
        "$regex",
        "$options",
        "$not",
        "$elemMatch",
        "$size",
    }
)
TYPE_NAMES = {
    "double",
    "string",
    "object",
    "array",
    "bool",
    "null",
    "int",
    "long",
    "decimal",
    "number",
    "date",
}


class QueryError(ValueError):
    """A malformed query; ``path`` says where (``$and/1/amount/$gt``)."""

    def __init__(self, path: str, message: str):
        super().__init__(f"{path or '(top level)'}: {message}")
        self.path = path
        self.message = message


def _join(path: str, key: Any) -> str:
    return f"{path}/{key}" if path else str(key)


def validate_query(query: Any, path: str = "") -> None:
    """Raise ``QueryError`` when ``query`` is not a valid MongoDB filter document."""
    if not isinstance(query, dict):
        raise QueryError(path, "a query must be a JSON object")
    for key, value in query.items():
        where = _join(path, key)
        if key in LOGICAL:
            if not isinstance(value, list) or not value:
                raise QueryError(where, f"{key} takes a non-empty list of queries")
            for index, sub in enumerate(value):
                validate_query(sub, _join(where, index))
        elif key.startswith("$"):
            raise QueryError(where, f"unknown top-level operator {key}")
        elif key == "":
            raise QueryError(where, "field names must not be empty")
        else:
            _validate_field_condition(value, where)


def _is_operator_document(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(k.startswith("$") for k in value)


def _validate_field_condition(value: Any, path: str) -> None:
    if not isinstance(value, dict) or not any(k.startswith("$") for k in value):
        return  # a literal: equality with a value or a whole sub-document
    if not _is_operator_document(value):
        raise QueryError(path, "do not mix operators and field names in one condition")
    for operator, operand in value.items():
        _validate_operator(operator, operand, value, _join(path, operator))


def _validate_operator(operator: str, operand: Any, siblings: dict, path: str) -> None:
    if operator not in FIELD_OPERATORS:
        raise QueryError(path, f"unknown operator {operator}")
    if operator in LIST_OPERATORS:
        _validate_list(operator, operand, path)
    if operator == "$exists" and not isinstance(operand, bool | int):
        raise QueryError(path, "$exists takes true or false")
    if operator == "$size" and (
        isinstance(operand, bool) or not isinstance(operand, int) or operand < 0
    ):
        raise QueryError(path, "$size takes a whole number, 0 or more")
    if operator == "$type":
        names = operand if isinstance(operand, list) else [operand]
        if not names:
            raise QueryError(path, "$type takes at least one type")
        for name in names:
            if name not in TYPE_NAMES:
                raise QueryError(path, f"unknown type {name!r}; use one of {sorted(TYPE_NAMES)}")
    if operator == "$regex":
        if not isinstance(operand, str):
            raise QueryError(path, "$regex takes a string")
        try:
            re.compile(operand)
        except re.error as exc:
            raise QueryError(path, f"invalid regular expression: {exc}") from exc
    if operator == "$options":
        if "$regex" not in siblings:
            raise QueryError(path, "$options needs $regex beside it")
        if not isinstance(operand, str) or set(operand) - set("imsx"):
            raise QueryError(path, "$options takes letters from 'imsx'")
    if operator == "$not":
        if isinstance(operand, dict):
            if not _is_operator_document(operand):
                raise QueryError(path, "$not takes an operator document such as {'$gt': 5}")
            _validate_field_condition(operand, path)
        elif not isinstance(operand, str):
            raise QueryError(path, "$not takes an operator document or a regular expression")
    if operator == "$elemMatch":
        if not isinstance(operand, dict):
            raise QueryError(path, "$elemMatch takes a query object")
        if _is_value_condition(operand):
            _validate_field_condition(operand, path)
        else:
            validate_query(operand, path)


def _is_value_condition(operand: dict[str, Any]) -> bool:
    """Whether an ``$elemMatch`` tests the elements themselves (``{"$gt": 5}``) rather than
    querying them as documents (``{"sku": "A1"}``, ``{"$or": [...]}``); as in mongod, the first
    key decides."""
    first = next(iter(operand), "")
    return first.startswith("$") and first not in LOGICAL


def _is_elem_match_list(items: list[Any]) -> bool:
    return any(isinstance(item, dict) and "$elemMatch" in item for item in items)


def _validate_list(operator: str, items: Any, path: str) -> None:
    if not isinstance(items, list):
        raise QueryError(path, f"{operator} takes a list")
    if operator == "$all" and _is_elem_match_list(items):
        for index, item in enumerate(items):
            if not (isinstance(item, dict) and list(item) == ["$elemMatch"]):
                raise QueryError(
                    _join(path, index), "$all takes either only {'$elemMatch': ...} or no operators"
                )
            where = _join(_join(path, index), "$elemMatch")
            _validate_operator("$elemMatch", item["$elemMatch"], item, where)
        return
    for index, item in enumerate(items):
        # mongod refuses operators inside the list rather than comparing with them
        if isinstance(item, dict) and next(iter(item), "").startswith("$"):
            raise QueryError(_join(path, index), f"{operator} takes values, not operators")


# --- evaluation -----------------------------------------------------------------------------------
# Queries are compiled once into closures; evaluating one against a document walks no query
# structure. The semantics are those of mongod's matcher, checked against a real mongod by
# tests/rules/test_conformance.py:
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
MISSING = object()
# What a path reached: pairs of a value and whether it is an array the path ended at by name,
# whose elements most operators also try.
Reached = list[tuple[Any, bool]]


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


# --- paths


def _position(part: str) -> int:
    """The array position a path part names, or -1: "0" and "12" do, "01" and "-1" do not."""
    if part.isascii() and part.isdigit() and (part == "0" or not part.startswith("0")):
        return int(part)
    return -1


def _reach(value: Any, parts: list[str], positions: list[int], start: int, out: Reached) -> None:
    """Add to ``out`` every value ``parts[start:]`` reaches from ``value``."""
    for index in range(start, len(parts)):
        if isinstance(value, dict):
            value = value.get(parts[index], MISSING)
        elif isinstance(value, list):
            _reach_across(value, parts, positions, index, out)
            return
        else:
            out.append((MISSING, False))
            return
    out.append((value, isinstance(value, list)))


def _reach_across(
    array: list, parts: list[str], positions: list[int], index: int, out: Reached
) -> None:
    """An array met before the path ends: its sub-documents take the rest of the path by name
    and, when ``parts[index]`` is a position, the element there takes the rest after it."""
    position = positions[index]
    last = index + 1 == len(parts)
    for offset, element in enumerate(array):
        if isinstance(element, dict):
            _reach(element, parts, positions, index, out)
        if offset == position:
            if last:
                out.append((element, False))  # picked by position: an array here is one value
            elif isinstance(element, dict):
                _reach(element, parts, positions, index + 1, out)
            elif isinstance(element, list):
                _reach_across(element, parts, positions, index + 1, out)


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
    positions = [_position(part) for part in parts]

    def test_path(document: dict[str, Any]) -> bool:
        value: Any = document
        for part in parts:
            if isinstance(value, dict):
                value = value.get(part, MISSING)
            elif isinstance(value, list):
                out: Reached = []
                _reach(document, parts, positions, 0, out)
                return reached(out)
            else:
                return single(MISSING)
        if isinstance(value, list):
            return reached([(value, True)])
        return single(value)

    return test_path


# --- values


def _bracket(value: Any) -> str | None:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, datetime):
        return "date"
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    return None


# BSON's order of the brackets, used where values of different brackets meet inside arrays
# and sub-documents that are compared.
_RANK = {"null": 5, "number": 10, "string": 15, "object": 20, "array": 25, "bool": 40, "date": 45}


def _normalise_date(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _equal(left: Any, right: Any) -> bool:
    left_kind, right_kind = _bracket(left), _bracket(right)
    if left_kind != right_kind:
        return False
    if left_kind == "date":
        return _normalise_date(left) == _normalise_date(right)
    if left_kind == "object":
        # MongoDB compares embedded documents field by field, in order
        return list(left.keys()) == list(right.keys()) and all(
            _equal(left[k], right[k]) for k in left
        )
    if left_kind == "array":
        return len(left) == len(right) and all(
            _equal(a, b) for a, b in zip(left, right, strict=True)
        )
    return left == right


def _order(left: Any, right: Any) -> int | None:
    """BSON's order of two values of one bracket (negative, zero, positive); None when a value
    of a type events cannot carry is met."""
    kind = _bracket(left)
    if kind in ("object", "array"):
        left_items = left.items() if kind == "object" else enumerate(left)
        right_items = right.items() if kind == "object" else enumerate(right)
        for (left_name, left_value), (right_name, right_value) in zip(
            left_items, right_items, strict=False
        ):
            # element by element: the bracket first, then the field name, then the value
            left_kind, right_kind = _bracket(left_value), _bracket(right_value)
            if left_kind is None or right_kind is None:
                return None
            if left_kind != right_kind:
                return _RANK[left_kind] - _RANK[right_kind]
            if left_name != right_name:
                return -1 if left_name < right_name else 1
            difference = _order(left_value, right_value)
            if difference != 0:
                return difference
        return len(left) - len(right)
    if kind == "null":
        return 0
    if kind is None:
        return None
    left, right = _normalise_date(left), _normalise_date(right)
    return (left > right) - (left < right)


def _equals(operand: Any) -> Predicate:
    """``$eq`` against one value; the scalar cases skip the generic comparison."""
    if isinstance(operand, re.Pattern):
        return _regex(operand)
    if operand is None:
        return lambda value: value is None or value is MISSING
    if isinstance(operand, bool):
        return lambda value: value is operand
    if isinstance(operand, int | float):
        return lambda value: value == operand and _is_number(value)
    if isinstance(operand, str):
        return lambda value: value == operand and isinstance(value, str)
    if isinstance(operand, datetime):
        target = _normalise_date(operand)
        return lambda value: isinstance(value, datetime) and _normalise_date(value) == target
    return lambda value: _equal(value, operand)


def _is_in(items: list[Any]) -> Predicate:
    """``$in`` against one value: strings and numbers by a set lookup, the rest one by one."""
    strings = {item for item in items if isinstance(item, str)}
    numbers = {item for item in items if _is_number(item)}
    others = [_equals(item) for item in items if not isinstance(item, str) and not _is_number(item)]

    def single(value: Any) -> bool:
        if isinstance(value, str):
            if value in strings:
                return True
        elif _is_number(value) and value in numbers:
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
    kind = _bracket(operand)
    if kind == "null":
        # null is alone in its bracket, together with "missing"
        if name in ("$gte", "$lte"):
            return lambda value: value is None or value is MISSING
        return lambda value: False
    if kind == "number":
        return lambda value: _is_number(value) and holds(value, operand)
    if kind == "string":
        return lambda value: isinstance(value, str) and holds(value, operand)
    if kind == "bool":
        return lambda value: isinstance(value, bool) and holds(value, operand)
    if kind == "date":
        target = _normalise_date(operand)
        return lambda value: isinstance(value, datetime) and holds(_normalise_date(value), target)
    if kind in ("object", "array"):

        def composite(value: Any) -> bool:
            if _bracket(value) != kind:
                return False
            difference = _order(value, operand)
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
    "number": _is_number,
    "date": lambda v: isinstance(v, datetime),
}


# --- operators


def _as_document(array: list) -> dict[str, Any]:
    """An array as ``$elemMatch`` queries it: BSON stores it as a document keyed "0", "1", ..."""
    return {str(index): element for index, element in enumerate(array)}


def _elem_match(operand: dict[str, Any]) -> _Condition:
    if _is_value_condition(operand):
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
        if _is_elem_match_list(operand):
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
    if not _is_operator_document(condition):
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
