"""The routing table: which subscriptions want an event, without a query per event.

Built from every subscription (paused and disabled ones too: their deliveries are created as
``held`` so they can be released later). Each pattern is indexed (exact names in a dict, prefix
wildcards in a list) and each filter compiled once. ``routing_stamp`` is one cheap query the
pipeline runs per batch to notice configuration changes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.db.models import Count, Max

from rules.conditions import compile_query
from subscriptions.models import Subscription


@dataclass(frozen=True)
class Route:
    subscription_id: int
    state: str
    accepts: Callable[[dict[str, Any]], bool] | None

    @property
    def held(self) -> bool:
        return self.state != Subscription.State.ACTIVE


class RoutingTable:
    def __init__(self, subscriptions: list[Subscription]):
        self._exact: dict[str, list[Route]] = {}
        self._prefixes: list[tuple[str, Route]] = []
        self._everything: list[Route] = []
        self._by_type: dict[str, list[Route]] = {}
        self.states: dict[int, str] = {s.pk: s.state for s in subscriptions}
        for subscription in subscriptions:
            route = Route(
                subscription.pk,
                subscription.state,
                compile_query(subscription.filter) if subscription.filter else None,
            )
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

    def match(self, document: dict[str, Any]) -> list[Route]:
        """Routes whose pattern and filter accept the stored event document."""
        return [
            route
            for route in self.routes_for(document["type"])
            if route.accepts is None or route.accepts(document)
        ]


def routing_stamp() -> tuple:
    """Changes whenever a subscription is added, changed or removed."""
    stamp = Subscription.objects.aggregate(changed=Max("updated_at"), count=Count("id"))
    return stamp["changed"], stamp["count"]


def routing_table_load() -> RoutingTable:
    return RoutingTable(list(Subscription.objects.all()))
