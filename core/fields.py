"""Serializer fields for query parameters, which arrive as text: read as strictly as the
schema states them. (Kept apart from ``core.api``, which imports drf-spectacular and so DRF's
views: the pagination class, loaded by DRF's settings, needs these without that cycle.)"""

from __future__ import annotations

import re
from typing import Any

from rest_framework import serializers

INTEGER = re.compile(r"-?[0-9]+")


class QueryIntegerField(serializers.IntegerField):
    """An integer query parameter: digits only (DRF's would read "1.0" as 1)."""

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, str) and not INTEGER.fullmatch(data):
            self.fail("invalid")
        return super().to_internal_value(data)
