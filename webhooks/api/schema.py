"""drf-spectacular description of a delivery with its attempts: the delivery's own component
plus ``traceparent`` and ``attempts_made``, so the status enum is declared once
(``DeliveryStatusEnum``)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension


class DeliveryDetailScheme(OpenApiSerializerExtension):
    target_class = "webhooks.api.serializers.DeliveryDetailSerializer"

    def map_serializer(self, auto_schema, direction) -> dict[str, Any]:
        from webhooks.api.serializers import DeliveryAttemptSerializer, DeliverySerializer

        delivery = auto_schema.resolve_serializer(DeliverySerializer, direction)
        attempt = auto_schema.resolve_serializer(DeliveryAttemptSerializer, direction)
        return {
            "allOf": [
                delivery.ref,
                {
                    "type": "object",
                    "properties": {
                        "traceparent": {
                            "type": "string",
                            "readOnly": True,
                            "description": (
                                "W3C trace context of the event's consume span (empty unless "
                                "tracing was on): the trace to look up."
                            ),
                        },
                        "attempts_made": {
                            "type": "array",
                            "items": attempt.ref,
                            "readOnly": True,
                            "description": "Every HTTP request made for it, oldest first.",
                        },
                    },
                    "required": ["traceparent", "attempts_made"],
                },
            ]
        }
