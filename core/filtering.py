"""The filter backend of every list: django-filter, strict about what the schema promises.

django-filter reads an unknown boolean (``?enabled=maybe``) or an empty value as "no filter"
and answers a foreign key that names no row (``?subscription=0``) with 400. The schema says a
boolean is ``true`` or ``false`` and an id is an integer, so here those are a 400, and an id
that names no row simply matches nothing.
"""

from __future__ import annotations

from copy import deepcopy
from typing import Any

from django import forms
from django.db import models
from django_filters import rest_framework as filters
from django_filters.rest_framework.filterset import FILTER_FOR_DBFIELD_DEFAULTS
from django_filters.widgets import BooleanWidget

from core.fields import INTEGER

TRUTH = {"true": True, "1": True, "false": False, "0": False}


class StrictBooleanWidget(BooleanWidget):
    """Keeps an unknown value as it came, for the field to refuse."""

    def value_from_datadict(self, data, files, name) -> Any:
        value = data.get(name)
        if isinstance(value, str):
            return TRUTH.get(value.lower(), value)
        return value


class StrictBooleanField(forms.NullBooleanField):
    widget = StrictBooleanWidget

    def to_python(self, value: Any) -> bool | None:
        if value is None or isinstance(value, bool):
            return value
        raise forms.ValidationError("Use true or false.", code="invalid")

    def validate(self, value: Any) -> None:
        pass


class StrictBooleanFilter(filters.BooleanFilter):
    field_class = StrictBooleanField

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("widget", StrictBooleanWidget)
        super().__init__(*args, **kwargs)


class StrictIntegerField(forms.IntegerField):
    """Digits only: Django's would read "1.0" as 1, which the schema calls no integer."""

    def to_python(self, value: Any) -> int | None:
        if isinstance(value, str) and value and not INTEGER.fullmatch(value):
            raise forms.ValidationError("Enter a whole number.", code="invalid")
        return super().to_python(value)


class IdFilter(filters.NumberFilter):
    """A foreign key by its id: an integer; one that names no row matches nothing."""

    field_class = StrictIntegerField  # Django matches nothing for ids beyond the column's range


STRICT_DEFAULTS = deepcopy(FILTER_FOR_DBFIELD_DEFAULTS)
STRICT_DEFAULTS.update(
    {
        models.BooleanField: {"filter_class": StrictBooleanFilter},
        models.ForeignKey: {"filter_class": IdFilter},
    }
)


class StrictFilterSet(filters.FilterSet):
    """django-filter's FilterSet; an empty value (``?subscriber=``) is refused unless the filter
    is a text one, where "" is a string like another."""

    FILTER_DEFAULTS = STRICT_DEFAULTS

    def get_form_class(self):
        base = super().get_form_class()

        class StrictForm(base):
            def clean(self) -> dict:
                cleaned = super().clean()
                for name, field in self.fields.items():
                    if self.data.get(name) == "" and not isinstance(field, forms.CharField):
                        self.add_error(name, "This value may not be empty.")
                return cleaned

        return StrictForm


class StrictFilterBackend(filters.DjangoFilterBackend):
    filterset_base = StrictFilterSet
