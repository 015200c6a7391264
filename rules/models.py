"""Rules: conditions over events and the ordered actions taken when they match."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from querylang import QueryError, validate_query


class Rule(models.Model):
    """When an event satisfies ``conditions``, run ``actions`` in order.

    Actions are a list of objects, one of:
    ``{"type": "deliver", "subscription": <id>}``,
    ``{"type": "notify", "message": "..."}``,
    ``{"type": "publish", "topic": "..."}``.
    With a threshold the rule fires only once ``threshold_count`` matches sharing
    ``threshold_key`` arrive within ``threshold_window_seconds``; ``cooldown_seconds`` keeps it
    quiet for a while after it fired.
    """

    class ActionType(models.TextChoices):
        DELIVER = "deliver", "Deliver to a subscription"
        NOTIFY = "notify", "Record a notification"
        PUBLISH = "publish", "Publish to a Kafka topic"

    name = models.CharField(max_length=100, unique=True)
    description = models.TextField(blank=True)
    conditions = models.JSONField(
        default=dict, blank=True, help_text="MongoDB query language; {} matches every event."
    )
    actions = models.JSONField(default=list)
    priority = models.IntegerField(default=100, help_text="Lower runs first.")
    enabled = models.BooleanField(default=True)
    threshold_count = models.PositiveIntegerField(null=True, blank=True)
    threshold_window_seconds = models.PositiveIntegerField(null=True, blank=True)
    threshold_key = models.CharField(
        max_length=200, blank=True, help_text="Event field the threshold counts by, e.g. user_id."
    )
    cooldown_seconds = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "name"]
        constraints = [
            models.CheckConstraint(
                condition=(
                    models.Q(threshold_count__isnull=True, threshold_window_seconds__isnull=True)
                    | models.Q(
                        threshold_count__isnull=False,
                        threshold_window_seconds__isnull=False,
                        threshold_count__gte=1,
                        threshold_window_seconds__gte=1,
                    )
                ),
                name="rule_threshold_complete",
            ),
        ]
        indexes = [
            # loading the enabled rules in evaluation order
            models.Index(fields=["enabled", "priority"], name="rule_enabled_priority"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        errors: dict[str, list[str]] = {}
        try:
            validate_query(self.conditions)
        except QueryError as exc:
            errors["conditions"] = [str(exc)]
        action_errors = list(_action_errors(self.actions))
        if action_errors:
            errors["actions"] = action_errors
        if (self.threshold_count is None) != (self.threshold_window_seconds is None):
            errors["threshold_window_seconds"] = [
                "Give both a threshold count and a window, or neither."
            ]
        if errors:
            raise ValidationError(errors)


def _action_errors(actions: Any):
    if not isinstance(actions, list) or not actions:
        yield "Actions must be a non-empty list."
        return
    for index, action in enumerate(actions):
        kind = action.get("type") if isinstance(action, dict) else None
        if kind == Rule.ActionType.DELIVER:
            if not isinstance(action.get("subscription"), int):
                yield f"/{index}: deliver needs a subscription id"
        elif kind == Rule.ActionType.PUBLISH:
            if not isinstance(action.get("topic"), str) or not action["topic"]:
                yield f"/{index}: publish needs a topic"
        elif kind != Rule.ActionType.NOTIFY:
            yield f"/{index}: type must be one of {', '.join(Rule.ActionType.values)}"


class RuleMatch(models.Model):
    """A rule fired for an event (after its threshold, outside its cooldown)."""

    rule = models.ForeignKey(Rule, on_delete=models.CASCADE, related_name="matches")
    # the event is its source and id together (events.envelope.MAX_STRING long at most)
    event_id = models.CharField(max_length=1024)
    event_source = models.CharField(max_length=1024)
    event_type = models.CharField(max_length=200)
    threshold_key = models.CharField(max_length=255, blank=True)
    notification = models.TextField(blank=True, help_text="Set by a notify action.")
    matched_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-matched_at", "-id"]
        constraints = [
            # a replayed pipeline batch records nothing twice
            models.UniqueConstraint(
                fields=["rule", "event_id", "event_source"], name="rulematch_unique_event"
            ),
        ]
        indexes = [
            # a rule's recent matches (admin)
            models.Index(fields=["rule", "-matched_at"], name="rulematch_rule_time"),
        ]

    def __str__(self) -> str:
        return f"{self.rule} matched {self.event_source} {self.event_id}"
