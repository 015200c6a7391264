"""EventHub's query language: MongoDB's, for subscription filters, rule conditions and
backtests alike.

- ``validation``: ``validate_query`` refuses a malformed query with the path of the fault;
- ``compiler``: ``compile_query`` turns a valid query into a predicate over stored events,
  with mongod's semantics (checked against a real mongod by tests/querylang/test_conformance.py);
- ``paths``: the one path walker, with MongoDB's array semantics;
- ``ordering``: values compared in BSON's type brackets and order.
"""

from querylang.compiler import compile_query, matches
from querylang.validation import QueryError, validate_query

__all__ = ["QueryError", "compile_query", "matches", "validate_query"]
