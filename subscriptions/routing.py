"""The routing table: which subscriptions want an event, without a query per event.

Built from every subscription (paused and disabled ones too: their deliveries are created as
``held`` so they can be released later). Each pattern is indexed (exact names in a dict, prefix
wildcards in a list) and each filter compiled once. ``routing_stamp`` is one cheap query the
pipeline runs per batch to notice configuration changes.

The common filter, one field equal to a string or a number (``{"payload.region": "eu"}``), is
also indexed: the subscriptions of a type that filter on the same field are found with one
lookup of the event's value in a dict instead of one evaluation each. Where the path meets an
array, the compiled filters decide, as they do for every other filter.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Max

from querylang import compile_query
from querylang.paths import THROUGH_ARRAY, plain_value
from subscriptions.models import Subscription


@dataclass(frozen=True)
class Route:
    subscription_id: int
    state: str
    accepts: Callable[[dict[str, Any]], bool] | None
    held: bool = field(init=False)  # deliveries wait: the subscription is paused or disabled

    def __post_init__(self) -> None:
        object.__setattr__(self, "held", self.state != Subscription.State.ACTIVE)


@dataclass
class _FieldIndex:
    """The routes of one event type whose filter is one field equal to a string or a number,
    by that value (numbers by value: 3 and 3.0 are the same key, as they are equal)."""

    parts: list[str]
    strings: dict[str, list[Route]] = field(default_factory=dict)
    numbers: dict[int | float, list[Route]] = field(default_factory=dict)
    routes: list[Route] = field(default_factory=list)


@dataclass
class _Plan:
    """How to find the routes of one event type: those without a filter always match, the
    indexed ones by value, the others by evaluating their filter."""

    always: list[Route]
    indexes: list[_FieldIndex]
    others: list[Route]
    position: dict[int, int]  # subscription id -> place in ``routes_for``, to keep its order


def _equality(query: Any) -> tuple[str, str | int | float] | None:
    """(path, value) when a filter is exactly one field equal to a string or a number."""
    if not isinstance(query, dict) or len(query) != 1:
        return None
    ((path, value),) = query.items()
    if not path or path.startswith("$") or isinstance(value, bool):
        return None
    if isinstance(value, str) or (isinstance(value, int | float) and value == value):
        return path, value  # (NaN, which equals nothing, is left to the evaluator)
    return None


class RoutingTable:
    def __init__(self, subscriptions: list[Subscription]):
        self._exact: dict[str, list[Route]] = {}
        self._prefixes: list[tuple[str, Route]] = []
        self._everything: list[Route] = []
        self._by_type: dict[str, list[Route]] = {}
        self._plans: dict[str, _Plan] = {}
        self._equalities: dict[int, tuple[str, str | int | float]] = {}
        self.states: dict[int, str] = {s.pk: s.state for s in subscriptions}
        for subscription in subscriptions:
            route = Route(
                subscription.pk,
                subscription.state,
                compile_query(subscription.filter) if subscription.filter else None,
            )
            equality = _equality(subscription.filter) if subscription.filter else None
            if equality is not None:
                self._equalities[subscription.pk] = equality
            for pattern in set(subscription.event_types):
                if pattern == "*":
                    self._everything.append(route)
                elif pattern.endswith(".*"):
                    self._prefixes.append((pattern[:-1], route))
                else:
                    self._exact.setdefault(pattern, []).append(route)

    def routes_for(self, event_type: str) -> list[Route]:
        """Subscriptions whose patterns match the type (one entry per subscription)."""
        routes = self._by_type.get(event_type)
        if routes is None:
            found = {r.subscription_id: r for r in self._everything}
            found.update({r.subscription_id: r for r in self._exact.get(event_type, [])})
            found.update(
                {r.subscription_id: r for p, r in self._prefixes if event_type.startswith(p)}
            )
            routes = self._by_type[event_type] = list(found.values())
        return routes

    def _plan(self, event_type: str) -> _Plan:
        routes = self.routes_for(event_type)
        plan = _Plan([], [], [], {r.subscription_id: i for i, r in enumerate(routes)})
        by_path: dict[str, _FieldIndex] = {}
        for route in routes:
            equality = self._equalities.get(route.subscription_id)
            if route.accepts is None:
                plan.always.append(route)
            elif equality is None:
                plan.others.append(route)
            else:
                path, value = equality
                index = by_path.get(path)
                if index is None:
                    index = by_path[path] = _FieldIndex(path.split("."))
                    plan.indexes.append(index)
                keyed = index.strings if isinstance(value, str) else index.numbers
                keyed.setdefault(value, []).append(route)
                index.routes.append(route)
        self._plans[event_type] = plan
        return plan

    def match(self, document: dict[str, Any]) -> list[Route]:
        """Routes whose pattern and filter accept the stored event document (in the order of
        ``routes_for``)."""
        plan = self._plans.get(document["type"]) or self._plan(document["type"])
        found = plan.always.copy()
        for index in plan.indexes:
            value = plain_value(document, index.parts)
            if value is THROUGH_ARRAY or isinstance(value, list):
                found.extend(r for r in index.routes if r.accepts(document))
            elif isinstance(value, str):
                found.extend(index.strings.get(value, ()))
            elif isinstance(value, int | float) and not isinstance(value, bool):
                found.extend(index.numbers.get(value, ()))
            # anything else (missing, null, an object, a date) equals no string or number
        for route in plan.others:
            if route.accepts(document):
                found.append(route)
        if len(found) > 1:
            found.sort(key=lambda route: plan.position[route.subscription_id])
        return found


def routing_stamp() -> tuple:
    """Changes whenever a subscription is added, changed or removed."""
    stamp = Subscription.objects.aggregate(changed=Max("updated_at"), count=Count("id"))
    return stamp["changed"], stamp["count"]


def routing_table_load() -> RoutingTable:
    return RoutingTable(list(Subscription.objects.all()))
