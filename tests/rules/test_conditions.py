import pytest

from rules.conditions import QueryError, validate_query


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
