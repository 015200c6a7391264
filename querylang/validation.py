"""Checks that a query is well formed, so a bad filter or rule condition is refused when it
is saved, with the path of the fault."""

from __future__ import annotations

import re
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


def is_operator_document(value: Any) -> bool:
    return isinstance(value, dict) and bool(value) and all(k.startswith("$") for k in value)


def _validate_field_condition(value: Any, path: str) -> None:
    if not isinstance(value, dict) or not any(k.startswith("$") for k in value):
        return  # a literal: equality with a value or a whole sub-document
    if not is_operator_document(value):
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
            if not is_operator_document(operand):
                raise QueryError(path, "$not takes an operator document such as {'$gt': 5}")
            _validate_field_condition(operand, path)
        elif not isinstance(operand, str):
            raise QueryError(path, "$not takes an operator document or a regular expression")
    if operator == "$elemMatch":
        if not isinstance(operand, dict):
            raise QueryError(path, "$elemMatch takes a query object")
        if is_value_condition(operand):
            _validate_field_condition(operand, path)
        else:
            validate_query(operand, path)


def is_value_condition(operand: dict[str, Any]) -> bool:
    """Whether an ``$elemMatch`` tests the elements themselves (``{"$gt": 5}``) rather than
    querying them as documents (``{"sku": "A1"}``, ``{"$or": [...]}``); as in mongod, the first
    key decides."""
    first = next(iter(operand), "")
    return first.startswith("$") and first not in LOGICAL


def is_elem_match_list(items: list[Any]) -> bool:
    return any(isinstance(item, dict) and "$elemMatch" in item for item in items)


def _validate_list(operator: str, items: Any, path: str) -> None:
    if not isinstance(items, list):
        raise QueryError(path, f"{operator} takes a list")
    if operator == "$all" and is_elem_match_list(items):
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
