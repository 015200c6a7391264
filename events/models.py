"""Event types: what may be published, with the JSON Schema its payload must satisfy."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

EVENT_TYPE_NAME_RE = r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$"


def schema_errors(schema: dict[str, Any]) -> list[str]:
    """Problems that make ``schema`` unusable as a JSON Schema (empty when it is valid)."""
    if not isinstance(schema, dict):
        return ["The schema must be a JSON object."]
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        pointer = "/" + "/".join(str(part) for part in exc.absolute_path)
        return [f"{exc.message} (at {pointer})"]
    return []


def payload_errors(schema: dict[str, Any], payload: Any) -> list[str]:
    """Where ``payload`` fails ``schema``, each message naming the JSON pointer."""
    validator = Draft202012Validator(schema)
    return [
        f"{'/' + '/'.join(str(part) for part in error.absolute_path)}: {error.message}"
        for error in sorted(validator.iter_errors(payload), key=lambda e: list(e.absolute_path))
    ]


class EventType(models.Model):
    """A kind of event (``payment.failed``), its payload schema and how long events are kept."""

    name = models.CharField(
        max_length=200,
        unique=True,
        validators=[
            RegexValidator(
                EVENT_TYPE_NAME_RE,
                "Use lowercase dotted names such as payment.failed "
                "(letters, digits and underscores between the dots).",
            )
        ],
    )
    description = models.TextField(blank=True)
    schema = models.JSONField(
        default=dict, blank=True, help_text="JSON Schema (2020-12) the event's data must satisfy."
    )
    schema_version = models.PositiveIntegerField(
        default=1, editable=False, help_text="Raised each time the schema changes."
    )
    enabled = models.BooleanField(default=True)
    retention_days = models.PositiveIntegerField(
        default=30,
        validators=[MinValueValidator(1)],
        help_text="Days raw events of this type are kept in MongoDB.",
    )
    example = models.JSONField(
        null=True, blank=True, help_text="An example payload; it must satisfy the schema."
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["name"]
        permissions = [("publish_event", "Can publish events")]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(name__regex=EVENT_TYPE_NAME_RE), name="eventtype_name_dotted"
            ),
            models.CheckConstraint(
                condition=models.Q(retention_days__gte=1), name="eventtype_retention_positive"
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None:
            stored = EventType.objects.filter(pk=self.pk).values_list("schema", flat=True).first()
            if stored is not None and stored != self.schema:
                self.schema_version += 1
                update_fields = kwargs.get("update_fields")
                if update_fields is not None:
                    kwargs["update_fields"] = {*update_fields, "schema_version"}
        super().save(*args, **kwargs)

    def clean(self) -> None:
        errors = schema_errors(self.schema)
        if errors:
            raise ValidationError({"schema": errors})
        if self.example is not None:
            problems = payload_errors(self.schema, self.example)
            if problems:
                raise ValidationError({"example": problems})
