import pytest
from bson.int64 import Int64

from querylang import QueryError, matches, validate_query


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"type": "payment.failed"},
        {"amount": {"$gte": 10, "$lt": 100}},
        {"$or": [{"severity": {"$gte": 8}}, {"tags": {"$all": ["vip", "eu"]}}]},
        {"items": {"$elemMatch": {"sku": "A1", "qty": {"$gt": 2}}}},
        {"scores": {"$elemMatch": {"$gt": 5}}},
        {"name": {"$regex": "^al", "$options": "i"}},
        {"name": {"$not": {"$regex": "^bot"}}},
        {"payload.card.country": {"$in": ["DE", "FR"]}, "meta": {"$exists": False}},
        {"amount": {"$type": ["int", "double"]}},
        {"address": {"city": "Berlin"}},
    ],
)
def test_valid_queries_pass(query):
    validate_query(query)


@pytest.mark.parametrize(
    ("query", "path", "words"),
    [
        ([], "", "JSON object"),
        ({"$where": "1"}, "$where", "unknown top-level operator"),
        ({"$and": {}}, "$and", "non-empty list"),
        ({"$or": [{"a": {"$bad": 1}}]}, "$or/0/a/$bad", "unknown operator"),
        ({"a": {"$in": 3}}, "a/$in", "takes a list"),
        ({"a": {"$size": "2"}}, "a/$size", "whole number"),
        ({"a": {"$regex": "("}}, "a/$regex", "invalid regular expression"),
        ({"a": {"$options": "i"}}, "a/$options", "needs $regex"),
        ({"a": {"$type": "strin"}}, "a/$type", "unknown type"),
        ({"a": {"$gt": 1, "b": 2}}, "a", "do not mix"),
        ({"a": {"$not": 5}}, "a/$not", "operator document"),
    ],
)
def test_invalid_queries_name_the_fault(query, path, words):
    with pytest.raises(QueryError) as caught:
        validate_query(query)
    assert caught.value.path == path
    assert words in caught.value.message


# Spot checks of the evaluator, each a difference from mongod in an earlier version, found by
# the conformance test (test_conformance.py) or while writing it; the answers are mongod 6.0's.


def test_path_crossing_an_array_of_scalars_reaches_nothing_not_null():
    assert not matches({"a.b": None}, {"a": [1, 2]})
    assert not matches({"a.b": None}, {"a": []})
    assert matches({"a.b": {"$nin": [None]}}, {"a": [1, 2]})
    assert matches({"a.b": None}, {"a": 5})  # a scalar on the way: the field is missing


def test_null_matches_when_one_sub_document_lacks_the_field():
    document = {"a": [{"b": 2}, {"c": 1}]}
    assert matches({"a.b": None}, document)
    assert matches({"a.b": {"$in": [None, 7]}}, document)
    assert matches({"a.b": {"$lte": None}}, document)
    assert not matches({"a.b": {"$nin": [None]}}, document)


def test_each_operator_beside_a_negative_one_is_tested_on_its_own():
    # $ne holds for every b, $gt for one of them: mongod matches
    assert matches({"a.b": {"$ne": 5, "$gt": 3}}, {"a": [{"b": 4}, {"b": 1}]})
    assert not matches({"a.b": {"$ne": 5, "$gt": 3}}, {"a": [{"b": 4}, {"b": 5}]})


def test_not_negates_its_operators_together_over_all_values():
    condition = {"a.b": {"$not": {"$gt": 5, "$lt": 10}}}
    assert not matches(condition, {"a": [{"b": 1}, {"b": 20}]})  # some b > 5, some b < 10
    assert not matches(condition, {"a": [{"b": 7}]})
    assert matches(condition, {"a": [{"b": 1}]})


def test_array_position_picks_an_array_as_one_value():
    assert not matches({"a.0": 1}, {"a": [[1, 2]]})
    assert matches({"a.0": [1, 2]}, {"a": [[1, 2]]})
    assert not matches({"a.0": {"$type": "number"}}, {"a": [[1]]})
    assert matches({"a.0": 1}, {"a": [1, 2]})


def test_part_with_a_leading_zero_is_a_field_name_not_a_position():
    assert not matches({"a.01": 2}, {"a": [1, 2]})
    assert matches({"a.01": 2}, {"a": {"01": 2}})


def test_position_in_an_array_of_documents_is_also_looked_up_as_a_field_name():
    # mongod also reads "a.0.b" as field "0" of each element, which is missing there
    assert matches({"a.0.b": None}, {"a": [{"b": 1}]})
    assert matches({"a.0.b": 1}, {"a": [{"b": 1}]})


def test_all_of_elem_match_needs_an_element_for_each():
    condition = {"a": {"$all": [{"$elemMatch": {"b": 1}}, {"$elemMatch": {"b": 2}}]}}
    assert matches(condition, {"a": [{"b": 1}, {"b": 2}]})
    assert not matches(condition, {"a": [{"b": 1}]})


def test_elem_match_of_values_does_not_look_into_nested_arrays():
    assert not matches({"a": {"$elemMatch": {"$eq": 1}}}, {"a": [[1]]})
    assert not matches({"a": {"$elemMatch": {"$gt": 5}}}, {"a": [[6]]})
    assert matches({"a": {"$elemMatch": {"$gt": 5}}}, {"a": [6]})


def test_elem_match_queries_a_nested_array_as_a_document_keyed_by_position():
    assert matches({"a": {"$elemMatch": {"0": 1}}}, {"a": [[1]]})
    assert not matches({"a": {"$elemMatch": {"0": 1}}}, {"a": [1]})


def test_elem_match_may_start_with_a_logical_operator():
    condition = {"a": {"$elemMatch": {"$or": [{"b": 1}, {"c": 1}]}}}
    validate_query(condition)
    assert matches(condition, {"a": [{"c": 1}]})
    assert not matches(condition, {"a": [{"d": 1}]})


def test_arrays_and_documents_compare_in_bson_order():
    assert matches({"a": {"$gt": [1]}}, {"a": [1, 2]})  # longer, same start
    assert matches({"a": {"$gt": [1]}}, {"a": [[0]]})  # an array sorts after a number
    assert not matches({"a": {"$gt": [1]}}, {"a": [0]})
    assert matches({"a": {"$gt": {"b": 1}}}, {"a": {"c": 0}})  # field names first
    assert not matches({"a": {"$gt": {"b": 1}}}, {"a": {"b": 1}})


def test_an_int64_read_back_from_mongodb_is_a_long_whatever_its_size():
    assert matches({"a": {"$type": "long"}}, {"a": Int64(5)})
    assert not matches({"a": {"$type": "int"}}, {"a": Int64(5)})
    assert matches({"a": {"$type": "int"}}, {"a": 5})
    assert matches({"a": {"$type": "long"}}, {"a": 2**31})


@pytest.mark.parametrize(
    ("query", "path", "words"),
    [
        ({"a": {"$size": -1}}, "a/$size", "0 or more"),
        ({"a": {"$type": []}}, "a/$type", "at least one type"),
        ({"a": {"$in": [{"$gt": 1}]}}, "a/$in/0", "not operators"),
        ({"a": {"$all": [{"$elemMatch": {"b": 1}}, 2]}}, "a/$all/1", "only {'$elemMatch'"),
        ({"a": {"$all": [{"$elemMatch": {"$bad": 1}}]}}, "a/$all/0/$elemMatch/$bad", "unknown"),
    ],
)
def test_queries_mongod_refuses_are_refused(query, path, words):
    with pytest.raises(QueryError) as caught:
        validate_query(query)
    assert caught.value.path == path
    assert words in caught.value.message
