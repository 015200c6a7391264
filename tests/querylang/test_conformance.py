"""The query evaluator agrees with mongod: a property-based conformance test.

Hypothesis generates up to eight small documents (nested sub-documents, arrays of scalars, of
arrays and of sub-documents, ints, floats, strings, booleans, null, dates with and without a
time zone, missing fields) and a filter in the subset of MongoDB's query language that
``validate_query`` accepts (every field operator, $and/$or/$nor, $not and $elemMatch nested
twice, dotted paths with array positions). The documents go into a scratch collection of the
real MongoDB, and for the filter and each smaller filter inside it ``compile_query`` must select
exactly the documents that mongod's ``find`` returns, both on the documents as generated and on
the copies read back from MongoDB.

The generators stay within ranges where mirroring mongod is a goal; what is left out on purpose:

- NaN: mongod orders it below every number and equal to itself, Python's ``float`` does not;
  events are JSON, which has no NaN.
- Integers beyond int64 (BSON cannot store them) and Decimal128, ObjectId, binary, regex
  values and other BSON types that JSON events cannot carry.
- Regular expressions use a few constructs that PCRE (mongod) and Python's ``re`` read alike:
  literals, ``.``, ``^``, ``$``, a character class and ``*``, over ASCII letters, ``é`` and a
  newline. Where the two dialects differ (``\\Z``, possessive quantifiers, Unicode classes)
  the evaluator follows Python.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from bson.int64 import Int64
from bson.regex import Regex
from django.conf import settings as django_settings
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st
from pymongo.collection import Collection

from core import mongo
from querylang import compile_query, validate_query, validation

pytestmark = pytest.mark.services

# Few field names, so generated paths often reach generated fields. "0" and "1" are both
# field names of sub-documents and array positions in paths; "01" is a field name that is
# never an array position. Repeats weigh the draw toward the common names.
KEYS = st.sampled_from(("a", "a", "a", "b", "b", "0", "1", "01"))


@st.composite
def paths(draw: st.DrawFn) -> str:
    """One to three parts, mostly short enough to reach something."""
    first = draw(st.sampled_from(("a", "a", "a", "b", "0")))
    rest = [draw(KEYS) for _ in range(draw(st.sampled_from((0, 0, 1, 1, 1, 2))))]
    return ".".join([first, *rest])


PATHS = paths()

# Numbers mix int and float forms of one value, the int32 and int64 limits, and values next to
# 2**53, where comparing an int with a float through a lossy conversion would go wrong.
NUMBERS = st.integers(-2, 2) | st.sampled_from(
    [
        0.0,
        -0.0,
        1.0,
        1.5,
        -1.5,
        2.0,
        2**31 - 1,
        2**31,
        Int64(2),  # int64 in BSON though small, as other clients may store numbers
        2**53,
        2**53 + 1,
        float(2**53),
        2**63 - 1,
        -(2**63),
        float("inf"),
        float("-inf"),
    ]
)
STRINGS = st.sampled_from(["", "a", "b", "ab", "ba", "A", "é", "É", "a\n", "a\nb"]) | st.text(
    "abé", max_size=2
)
# Millisecond instants (BSON's precision), each shown as UTC, as +02:00 and as naive UTC.
INSTANTS = [
    datetime(2024, 1, 1, tzinfo=UTC),
    datetime(2024, 1, 1, 0, 0, 0, 1000, tzinfo=UTC),
    datetime(2024, 6, 30, 12, tzinfo=UTC),
]
PLUS_TWO = timezone(timedelta(hours=2))
DATES = st.tuples(st.sampled_from(INSTANTS), st.sampled_from([UTC, PLUS_TWO, None])).map(
    lambda pair: pair[0].astimezone(pair[1]) if pair[1] else pair[0].replace(tzinfo=None)
)
SCALARS = st.none() | st.booleans() | NUMBERS | STRINGS | DATES
TYPE_NAMES = sorted(validation.TYPE_NAMES)  # every name validate_query accepts
REGEX_TOKENS = ["a", "b", "A", "é", ".", "^", "$", "[ab]", "b*", "\n"]
REGEXES = st.lists(st.sampled_from(REGEX_TOKENS), min_size=1, max_size=3).map("".join)
REGEX_OPTIONS = st.sampled_from(["i", "m", "s", "x", "im", "ms"])
# How many conditions go side by side: mostly one, as a conjunction of many selects nothing.
HOW_MANY = st.sampled_from([1, 1, 1, 1, 2, 3])


# Each example draws a few scalars, and documents and operands take three in four of their
# scalars from those, so that equal and ordered pairs are common rather than a coincidence.
POOL = st.shared(st.lists(SCALARS, min_size=1, max_size=4), key="conformance-pool")


@st.composite
def pooled_scalars(draw: st.DrawFn) -> Any:
    pool = draw(POOL)
    if draw(st.integers(0, 3)):
        return pool[draw(st.integers(0, len(pool) - 1))]
    return draw(SCALARS)


POOLED = pooled_scalars()
VALUES = st.recursive(
    POOLED,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(KEYS, children, max_size=3)
        # arrays of small sub-documents sharing field names, as events carry them
        | st.lists(st.dictionaries(st.sampled_from("ab"), children, max_size=2), max_size=3)
    ),
    max_leaves=6,
)
# Operands are scalars two times in three, else any value.
OPERANDS = st.sampled_from([True, True, False]).flatmap(lambda scalar: POOLED if scalar else VALUES)
# Most documents have the field most paths start with, some lack it.
DOCUMENTS = st.fixed_dictionaries(
    {"a": VALUES}, optional={key: VALUES for key in ("b", "0", "1", "01")}
) | st.dictionaries(KEYS, VALUES, max_size=3)


@st.composite
def simple_operators(draw: st.DrawFn) -> dict[str, Any]:
    """One operator that takes a value, a list or a type name."""
    operator = draw(
        st.sampled_from(
            ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte"]
            + ["$in", "$nin", "$all", "$exists", "$type", "$size"]
        )
    )
    if operator in ("$in", "$nin", "$all"):
        return {operator: draw(st.lists(OPERANDS, max_size=3))}
    if operator == "$exists":
        return {operator: draw(st.booleans())}
    if operator == "$type":
        names = st.sampled_from(TYPE_NAMES)
        return {operator: draw(names | st.lists(names, min_size=1, max_size=2))}
    if operator == "$size":
        return {operator: draw(st.integers(0, 3))}
    # ranges take any value too: arrays and sub-documents are ordered as BSON orders them
    return {operator: draw(OPERANDS)}


SIMPLE_OPERATORS = simple_operators()


@st.composite
def operator_documents(draw: st.DrawFn, depth: int) -> dict[str, Any]:
    """``{"$gt": 1, "$ne": 3}``: operators on one path; at ``depth`` > 0 also ``$not``,
    ``$elemMatch`` and ``$all`` of ``$elemMatch`` around smaller conditions."""
    document: dict[str, Any] = {}
    for _ in range(draw(HOW_MANY)):
        kind = draw(st.sampled_from(["simple"] * 5 + ["regex"] + ["nested"] * 2 * (depth > 0)))
        group: dict[str, Any]
        if kind == "simple":
            group = draw(SIMPLE_OPERATORS)
        elif kind == "regex":
            # $options may not stand alone
            group = {"$regex": draw(REGEXES)}
            if draw(st.booleans()):
                group["$options"] = draw(REGEX_OPTIONS)
        else:
            operator = draw(st.sampled_from(["$not", "$elemMatch", "$all"]))
            if operator == "$not":
                group = {"$not": draw(NOT_OPERANDS[depth - 1])}
            elif operator == "$elemMatch":
                group = {"$elemMatch": draw(ELEM_MATCH_OPERANDS[depth - 1])}
            else:
                items = draw(st.lists(ELEM_MATCH_OPERANDS[depth - 1], min_size=1, max_size=2))
                group = {"$all": [{"$elemMatch": item} for item in items]}
        if not document.keys() & group.keys():
            document.update(group)
    return document


@st.composite
def queries(draw: st.DrawFn, depth: int) -> dict[str, Any]:
    """Filter documents: field conditions (a literal or operators) and maybe one logical
    operator over smaller queries, before or after them (an $elemMatch whose query starts with
    a logical operator is one over documents, not over values)."""
    fields: dict[str, Any] = {}
    for _ in range(draw(HOW_MANY)):
        literal = draw(st.sampled_from([False, False, True]))
        fields[draw(PATHS)] = draw(OPERANDS if literal else OPERATOR_DOCUMENTS[depth])
    if depth == 0 or not draw(st.sampled_from([False, False, True])):
        return fields
    logical = {
        draw(st.sampled_from(["$and", "$or", "$nor"])): draw(
            st.lists(QUERIES[depth - 1], min_size=1, max_size=3)
        )
    }
    return {**logical, **fields} if draw(st.booleans()) else {**fields, **logical}


# Built once per depth: a strategy made anew for each draw costs more than the draw.
OPERATOR_DOCUMENTS: dict[int, st.SearchStrategy[dict[str, Any]]] = {}
QUERIES: dict[int, st.SearchStrategy[dict[str, Any]]] = {}
# $not takes an operator document, or a string read as a regular expression
NOT_OPERANDS: dict[int, st.SearchStrategy[Any]] = {}
# $elemMatch takes operators on the elements, or a query over them as documents
ELEM_MATCH_OPERANDS: dict[int, st.SearchStrategy[dict[str, Any]]] = {}
for _depth in range(3):
    OPERATOR_DOCUMENTS[_depth] = operator_documents(_depth)
    QUERIES[_depth] = queries(_depth)
    NOT_OPERANDS[_depth] = OPERATOR_DOCUMENTS[_depth] | REGEXES
    ELEM_MATCH_OPERANDS[_depth] = OPERATOR_DOCUMENTS[_depth] | QUERIES[_depth]
EXAMPLES = st.tuples(st.lists(DOCUMENTS, min_size=1, max_size=8), QUERIES[2])


REGEX_PAIR = ("$regex", "$options")


def parts_of(query: dict[str, Any]) -> list[dict[str, Any]]:
    """The query and the smaller queries inside it: each field condition alone, each operator
    alone, each branch of a logical operator. A big conjunction often selects nothing, while
    its parts select some documents and not others, which is where evaluators disagree."""
    found = [query]
    for key, value in query.items():
        if key in ("$and", "$or", "$nor"):
            for branch in value:
                found += parts_of(branch)
            continue
        if len(query) > 1:
            found.append({key: value})
        if isinstance(value, dict) and len(value) > 1 and all(k.startswith("$") for k in value):
            for operator, operand in value.items():
                if operator == "$regex":
                    found.append({key: {k: v for k, v in value.items() if k in REGEX_PAIR}})
                elif operator != "$options":
                    found.append({key: {operator: operand}})
    return found


def to_mongo(query: Any) -> Any:
    """The query as mongod takes it: EventHub's JSON filters spell ``$not`` with a regular
    expression as a plain string, mongod wants a BSON regex there."""
    if isinstance(query, dict):
        return {
            key: Regex(value) if key == "$not" and isinstance(value, str) else to_mongo(value)
            for key, value in query.items()
        }
    if isinstance(query, list):
        return [to_mongo(item) for item in query]
    return query


@pytest.fixture(scope="module")
def scratch() -> Iterator[Collection]:
    """A collection of its own, in a database of its own next to the test database. Not
    ``mongo_db``: that fixture drops the whole test database after each test, which would pull
    the collection away from under this one whenever another test session runs meanwhile."""
    database = mongo.get_client()[f"{django_settings.MONGO_DB}_conformance"]
    collection = database[f"run_{uuid.uuid4().hex[:10]}"]
    yield collection
    collection.drop()


@settings(
    # CONFORMANCE_EXAMPLES=5000 for a deeper search after changing the evaluator
    max_examples=int(os.environ.get("CONFORMANCE_EXAMPLES", "300")),
    deadline=None,
    derandomize=True,  # the same examples on every run, so CI is reproducible
    database=None,  # no .hypothesis/ folder in the tree
    suppress_health_check=[HealthCheck.too_slow],
)
@given(example=EXAMPLES)
def test_compiled_query_selects_what_mongod_finds(
    scratch: Collection, example: tuple[list[dict[str, Any]], dict[str, Any]]
) -> None:
    documents, whole = example
    scratch.delete_many({})
    scratch.insert_many([{"_id": index, **document} for index, document in enumerate(documents)])
    stored = list(scratch.find({}))

    for query in parts_of(whole):
        validate_query(query)
        accepts = compile_query(query)
        expected = {found["_id"] for found in scratch.find(to_mongo(query), {"_id": 1})}
        note(f"{query!r}: mongod selects {sorted(expected)}")
        assert {index for index, document in enumerate(documents) if accepts(document)} == expected
        assert {document["_id"] for document in stored if accepts(document)} == expected
