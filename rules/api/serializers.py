from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from rules.models import Rule


class RuleSerializer(serializers.ModelSerializer):
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
            raise serializers.ValidationError(exc.message_dict) from exc
        return attrs


class BacktestRequestSerializer(serializers.Serializer):
    days = serializers.IntegerField(min_value=1, max_value=365, default=7)
    conditions = serializers.JSONField(
        required=False, help_text="A draft to test instead of the saved conditions."
    )


class BacktestResultSerializer(serializers.Serializer):
    days = serializers.IntegerField()
    since = serializers.DateTimeField()
    matched = serializers.IntegerField()
    total = serializers.IntegerField()
