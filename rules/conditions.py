"""Conditions in MongoDB's query language, used by subscription filters and rule conditions.

``validate_query`` checks that a query is well formed, so a bad filter is refused when it is
saved with a message that points at the fault. ``compile_query`` turns a valid query into a
predicate the pipeline runs against stored event documents.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

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
    if operator in LIST_OPERATORS and not isinstance(operand, list):
        raise QueryError(path, f"{operator} takes a list")
    if operator == "$exists" and not isinstance(operand, bool | int):
        raise QueryError(path, "$exists takes true or false")
    if operator == "$size" and (isinstance(operand, bool) or not isinstance(operand, int)):
        raise QueryError(path, "$size takes a whole number")
    if operator == "$type":
        names = operand if isinstance(operand, list) else [operand]
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
        if _is_operator_document(operand):
            _validate_field_condition(operand, path)
        else:
            validate_query(operand, path)


# --- evaluation -----------------------------------------------------------------------------------
# Queries are compiled once into closures; evaluating one against a document walks no query
# structure. The semantics follow MongoDB's: a dotted path fans out over arrays, comparison
# operators compare only values of the same type bracket (numbers with numbers, strings with
# strings, dates with dates; booleans are not numbers), ``null`` equality also matches a missing
# field, and ``$ne``/``$nin`` match a missing field.

Predicate = Callable[[Any], bool]
MISSING = object()


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


def _normalise_date(value: Any) -> Any:
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


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


def _resolve(document: Any, parts: list[str]) -> list[Any]:
    """Every value a dotted path reaches (arrays fan out, numeric parts also index arrays);
    ``MISSING`` when the path reaches nothing."""
    # fast path: plain sub-documents all the way down (the common case)
    value = document
    for index, part in enumerate(parts):
        if isinstance(value, dict):
            if part not in value:
                return [MISSING]
            value = value[part]
        else:
            return _resolve_slow(value, parts[index:])
    return [value]


def _resolve_slow(document: Any, parts: list[str]) -> list[Any]:
    if not parts:
        return [document]
    head, rest = parts[0], parts[1:]
    if isinstance(document, dict):
        if head not in document:
            return [MISSING]
        return _resolve_slow(document[head], rest)
    if isinstance(document, list):
        values: list[Any] = []
        if head.isdigit() and int(head) < len(document):
            values.extend(_resolve_slow(document[int(head)], rest))
        for element in document:
            if isinstance(element, dict):
                values.extend(v for v in _resolve_slow(element, parts) if v is not MISSING)
        return values or [MISSING]
    return [MISSING]


def _candidates(value: Any) -> list[Any]:
    """A value and, for arrays, each element: what a field condition is tried against."""
    if isinstance(value, list):
        return [value, *value]
    return [value]


def _compare(operator: str, operand: Any) -> Predicate:
    kind = _bracket(operand)
    target = _normalise_date(operand)
    test = {
        "$gt": lambda a: a > target,
        "$gte": lambda a: a >= target,
        "$lt": lambda a: a < target,
        "$lte": lambda a: a <= target,
    }[operator]

    def check(value: Any) -> bool:
        if value is MISSING:
            # missing compares like null for $gte/$lte null
            return kind == "null" and operator in ("$gte", "$lte")
        for candidate in _candidates(value):
            candidate_kind = _bracket(candidate)
            if candidate_kind != kind:
                continue
            if kind == "null":
                if operator in ("$gte", "$lte"):
                    return True
                continue
            if kind in ("number", "string", "date"):
                if test(_normalise_date(candidate)):
                    return True
            elif kind == "bool" and test(candidate):
                return True
        return False

    return check


def _equals(operand: Any) -> Predicate:
    if isinstance(operand, re.Pattern):
        return _regex(operand)
    if operand is None:
        return lambda value: value is MISSING or any(c is None for c in _candidates(value))
    if isinstance(operand, str | int | float) and not isinstance(operand, bool):
        # fast path for scalars: same bracket (numbers with numbers, strings with strings)
        kind = str if isinstance(operand, str) else (int, float)

        def scalar(value: Any) -> bool:
            if isinstance(value, list):
                return any(_equal(c, operand) for c in _candidates(value))
            return isinstance(value, kind) and not isinstance(value, bool) and value == operand

        return scalar
    return lambda value: value is not MISSING and any(
        _equal(candidate, operand) for candidate in _candidates(value)
    )


def _regex(pattern: re.Pattern) -> Predicate:
    return lambda value: value is not MISSING and any(
        isinstance(c, str) and pattern.search(c) is not None for c in _candidates(value)
    )


def _flags(options: str) -> int:
    flags = 0
    for letter, flag in (("i", re.I), ("m", re.M), ("s", re.S), ("x", re.X)):
        if letter in options:
            flags |= flag
    return flags


TYPE_TEST: dict[str, Callable[[Any], bool]] = {
    "double": lambda v: isinstance(v, float),
    "string": lambda v: isinstance(v, str),
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "bool": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool) and -(2**31) <= v < 2**31,
    "long": lambda v: isinstance(v, int) and not isinstance(v, bool) and not -(2**31) <= v < 2**31,
    "decimal": lambda v: False,
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "date": lambda v: isinstance(v, datetime),
}


def _operator(operator: str, operand: Any, siblings: dict[str, Any]) -> Predicate:
    if operator == "$eq":
        return _equals(operand)
    if operator == "$ne":
        equals = _equals(operand)
        return lambda value: not equals(value)
    if operator in ("$gt", "$gte", "$lt", "$lte"):
        return _compare(operator, operand)
    if operator == "$in":
        tests = [_equals(item) for item in operand]
        return lambda value: any(test(value) for test in tests)
    if operator == "$nin":
        tests = [_equals(item) for item in operand]
        return lambda value: not any(test(value) for test in tests)
    if operator == "$all":
        tests = [_equals(item) for item in operand]
        return lambda value: bool(tests) and all(test(value) for test in tests)
    if operator == "$exists":
        wanted = bool(operand)
        return lambda value: (value is not MISSING) == wanted
    if operator == "$type":
        names = operand if isinstance(operand, list) else [operand]
        tests = [TYPE_TEST[name] for name in names]
        return lambda value: value is not MISSING and any(
            test(c) for c in _candidates(value) for test in tests
        )
    if operator == "$regex":
        return _regex(re.compile(operand, _flags(siblings.get("$options", ""))))
    if operator == "$options":
        return lambda value: True  # read with $regex
    if operator == "$size":
        return lambda value: isinstance(value, list) and len(value) == operand
    if operator == "$not":
        inner = _regex(re.compile(operand)) if isinstance(operand, str) else _field(operand)
        return lambda value: not inner(value)
    if operator == "$elemMatch":
        if _is_operator_document(operand):
            inner = _field(operand)
            return lambda value: isinstance(value, list) and any(
                inner(element) for element in value
            )
        query = _compile(operand)
        return lambda value: isinstance(value, list) and any(
            isinstance(element, dict) and query(element) for element in value
        )
    raise QueryError(operator, f"unknown operator {operator}")


def _field(condition: Any) -> Predicate:
    """A predicate over one resolved value (MISSING when the field is absent)."""
    if isinstance(condition, dict) and _is_operator_document(condition):
        tests = [_operator(op, operand, condition) for op, operand in condition.items()]
        return lambda value: all(test(value) for test in tests)
    return _equals(condition)


def _compile(query: dict[str, Any]) -> Predicate:
    tests: list[Predicate] = []
    for key, value in query.items():
        if key in ("$and", "$or", "$nor"):
            parts = [_compile(sub) for sub in value]
            if key == "$and":
                tests.append(lambda doc, parts=parts: all(p(doc) for p in parts))
            elif key == "$or":
                tests.append(lambda doc, parts=parts: any(p(doc) for p in parts))
            else:
                tests.append(lambda doc, parts=parts: not any(p(doc) for p in parts))
            continue
        path = key.split(".")
        condition = _field(value)
        negative = isinstance(value, dict) and any(op in ("$ne", "$nin", "$not") for op in value)

        def test(doc, path=path, condition=condition, negative=negative) -> bool:
            values = _resolve(doc, path)
            if negative:
                # "not equal" must hold for every value the path reaches
                return all(condition(v) for v in values)
            return any(condition(v) for v in values)

        tests.append(test)
    return lambda doc: all(test(doc) for test in tests)


def compile_query(query: dict[str, Any]) -> Callable[[dict[str, Any]], bool]:
    """Validate ``query`` once and return a predicate over documents."""
    validate_query(query)
    return _compile(query)


def matches(query: dict[str, Any], document: dict[str, Any]) -> bool:
    return compile_query(query)(document)
