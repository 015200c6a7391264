"""The pipeline's routing table: its index of equality filters finds exactly the routes that
evaluating every compiled filter finds."""

from __future__ import annotations

from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st

from subscriptions.models import Subscription
from subscriptions.routing import RoutingTable
from tests.subscriptions.factories import SubscriptionFactory

PATHS = ["payload.n", "payload.region", "subject", "payload.items.0", "payload.a.b"]
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-2, 3),
    st.sampled_from([1.0, 2.5, float("nan")]),
    st.sampled_from(["eu", "us", "1", ""]),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.sampled_from(["n", "region", "items", "a", "b", "0"]), children),
    ),
    max_leaves=8,
)
filters = st.one_of(
    st.none(),
    st.builds(lambda path, value: {path: value}, st.sampled_from(PATHS), values),
    st.builds(lambda path, value: {path: {"$gte": value}}, st.sampled_from(PATHS), scalars),
    st.builds(
        lambda first, second: {**first, **second},
        st.builds(lambda value: {"payload.n": value}, scalars),
        st.builds(lambda value: {"subject": value}, scalars),
    ),
)
documents = st.builds(
    lambda payload, subject: {
        "event_id": "e1",
        "type": "order.created",
        "subject": subject,
        "payload": payload,
        "timestamp": datetime(2026, 11, 20, tzinfo=UTC),
    },
    st.dictionaries(st.sampled_from(["n", "region", "items", "a"]), values),
    scalars,
)


def build_table(specs: list[tuple[dict | None, str, str]]) -> RoutingTable:
    subscriptions = []
    for pk, (query, pattern, state) in enumerate(specs, start=1):
        subscription = SubscriptionFactory.build(
            event_types=[pattern], filter=query, state=state, subscriber=None
        )
        subscription.pk = pk
        subscriptions.append(subscription)
    return RoutingTable(subscriptions)


def evaluated(table: RoutingTable, document: dict) -> list[int]:
    """The routes found the plain way: every compiled filter of the type, in order."""
    return [
        route.subscription_id
        for route in table.routes_for(document["type"])
        if route.accepts is None or route.accepts(document)
    ]


@settings(max_examples=400, deadline=None)
@given(
    specs=st.lists(
        st.tuples(
            filters,
            st.sampled_from(["order.created", "order.*", "*", "payment.failed"]),
            st.sampled_from([Subscription.State.ACTIVE, Subscription.State.PAUSED]),
        ),
        max_size=8,
    ),
    batch=st.lists(documents, min_size=1, max_size=6),
)
def test_the_index_finds_what_evaluating_every_filter_finds(specs, batch):
    table = build_table(specs)
    for document in batch:
        assert [r.subscription_id for r in table.match(document)] == evaluated(table, document)


def test_numbers_match_by_value_and_booleans_match_no_number():
    table = build_table(
        [
            ({"payload.n": 1}, "*", Subscription.State.ACTIVE),
            ({"payload.n": 1.0}, "*", Subscription.State.ACTIVE),
            ({"payload.n": "1"}, "*", Subscription.State.PAUSED),
        ]
    )
    found = {
        repr(value): [
            r.subscription_id for r in table.match({"type": "t", "payload": {"n": value}})
        ]
        for value in (1, 1.0, True, "1", [0, 1], None)
    }
    assert found == {
        "1": [1, 2],
        "1.0": [1, 2],
        "True": [],
        "'1'": [3],
        "[0, 1]": [1, 2],  # an array holding the value matches, as in MongoDB
        "None": [],
    }
    assert [r.held for r in table.match({"type": "t", "payload": {"n": "1"}})] == [True]
