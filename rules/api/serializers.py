from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from core.api import ModelSerializer, Serializer
from core.problems import Unprocessable, field_errors
from rules.models import Rule


class RuleSerializer(ModelSerializer):
    conditions = serializers.DictField(
        required=False, help_text="MongoDB query language; {} matches every event."
    )
    actions = serializers.ListField(
        child=serializers.DictField(),
        min_length=1,
        help_text='Each {"type": "notify" | "deliver" (with "subscription") | "publish" '
        '(with "topic")}.',
    )

    class Meta:
        model = Rule
        fields = [
            "id",
            "name",
            "description",
            "conditions",
            "actions",
            "priority",
            "enabled",
            "threshold_count",
            "threshold_window_seconds",
            "threshold_key",
            "cooldown_seconds",
            "created_at",
            "updated_at",
        ]
        read_only_fields = ["created_at", "updated_at"]

    def validate(self, attrs):
        current = (
            {f: getattr(self.instance, f) for f in self.Meta.fields[1:-2]} if self.instance else {}
        )
        rule = Rule(**{**current, **attrs})
        try:
            rule.clean()
        except DjangoValidationError as exc:
            raise Unprocessable(
                "The rule is not valid.", extra={"errors": field_errors(exc)}
            ) from exc
        return attrs


class BacktestRequestSerializer(Serializer):
    days = serializers.IntegerField(min_value=1, max_value=365, default=7)
    conditions = serializers.DictField(
        required=False, help_text="A draft to test instead of the saved conditions."
    )


class BacktestResultSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    since = serializers.DateTimeField()
    matched = serializers.IntegerField()
    total = serializers.IntegerField()
