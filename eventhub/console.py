"""The operator console: Django admin whose index is the dashboard (``eventhub.dashboard``)."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest
from django.template.response import TemplateResponse

from eventhub.dashboard import dashboard


class OperatorConsole(admin.AdminSite):
    site_header = "EventHub"
    site_title = "EventHub admin"
    index_title = "Operator console"
    index_template = "admin/dashboard.html"

    def index(self, request: HttpRequest, extra_context: dict | None = None) -> TemplateResponse:
        return super().index(request, {"dashboard": dashboard(), **(extra_context or {})})
