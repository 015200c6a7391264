"""Evaluating rules against stored event documents, with threshold windows and cooldowns.

Thresholds count matches per (rule, key value) in a Redis sorted set scored by event time, so
"3 matches with the same user_id within 10 minutes" is a ZADD, a trim and a ZCARD. A cooldown
is a Redis key holding the id of the event that fired; a replayed batch sees its own event id
there and fires again (the database keeps one RuleMatch per rule and event), while other events
stay quiet until the key expires.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db.models import Count, Max
from prometheus_client import Counter

from core.identity import document_key, key_member
from core.redis import get_redis
from querylang import compile_query
from querylang.paths import MISSING, THROUGH_ARRAY, plain_value
from rules.models import Rule

RULES_MATCHED = Counter("rules_matched_total", "Rule firings recorded", ["rule"])


@dataclass(frozen=True)
class CompiledRule:
    rule: Rule
    accepts: Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class Firing:
    rule: Rule
    document: dict[str, Any]
    key: str


def lookup(document: dict[str, Any], path: str) -> Any:
    """The value a threshold key's path reaches through sub-documents (None if none)."""
    value = plain_value(document, path.split("."))
    return None if value is MISSING or value is THROUGH_ARRAY else value


class RuleSet:
    def __init__(self, rules: list[Rule]):
        self.rules = [CompiledRule(rule, compile_query(rule.conditions)) for rule in rules]

    def evaluate(self, documents: list[dict[str, Any]]) -> list[Firing]:
        """The firings of a batch, in document order, then rule priority."""
        firings: list[Firing] = []
        redis = None
        for document in documents:
            for compiled in self.rules:
                if not compiled.accepts(document):
                    continue
                rule = compiled.rule
                key = ""
                if rule.threshold_key:
                    value = lookup(document, rule.threshold_key)
                    key = "" if value is None else str(value)
                if rule.threshold_count or rule.cooldown_seconds:
                    redis = redis or get_redis()
                    if not _passes_threshold(redis, rule, key, document):
                        continue
                    member = key_member(document_key(document))
                    if not _outside_cooldown(redis, rule, key, member):
                        continue
                firings.append(Firing(rule, document, key))
                RULES_MATCHED.labels(rule=rule.name).inc()
        return firings


def _passes_threshold(redis, rule: Rule, key: str, document: dict[str, Any]) -> bool:
    if not rule.threshold_count:
        return True
    moment: datetime = document["timestamp"]
    score = moment.timestamp()
    name = f"eventhub:rule:{rule.pk}:window:{key}"
    pipe = redis.pipeline(transaction=False)
    # one member per event (source and id), so a replayed event counts once
    pipe.zadd(name, {key_member(document_key(document)): score})
    pipe.zremrangebyscore(name, "-inf", score - rule.threshold_window_seconds)
    pipe.zcount(name, score - rule.threshold_window_seconds, score)
    pipe.expire(name, rule.threshold_window_seconds + 60)
    _, _, count, _ = pipe.execute()
    return count >= rule.threshold_count


def _outside_cooldown(redis, rule: Rule, key: str, event: str) -> bool:
    """Whether ``event`` (a ``key_member``) may fire: it holds the cooldown, or takes it."""
    if not rule.cooldown_seconds:
        return True
    name = f"eventhub:rule:{rule.pk}:cooldown:{key}"
    if redis.set(name, event, nx=True, ex=rule.cooldown_seconds):
        return True
    holder = redis.get(name)
    return holder is not None and holder.decode() == event


def rules_stamp() -> tuple:
    stamp = Rule.objects.aggregate(changed=Max("updated_at"), count=Count("id"))
    return stamp["changed"], stamp["count"]


def rule_set_load() -> RuleSet:
    return RuleSet(list(Rule.objects.filter(enabled=True).order_by("priority", "name")))
