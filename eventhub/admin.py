"""The console's pages that need several apps at once: a subscription's filter checked against
its event types' examples and counted over the stored events (subscriptions know neither
event types nor MongoDB's events), deliveries filtered by the event types there are. The apps'
own admins register everything else; these subclasses take their place."""

from __future__ import annotations

import uuid
from contextvars import ContextVar
from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib import admin, messages
from django.http import HttpRequest
from django.utils.html import format_html_join

import events.admin
import webhooks.admin
from analytics.selectors import summary
from analytics.windows import Window, type_condition
from core.documents import event_document
from events.models import EventType
from querylang import QueryError, matches
from rules.services import rule_backtest
from subscriptions.models import Subscription
from webhooks.models import Delivery

BACKTEST_DAYS = 7


def example_document(event_type: EventType) -> dict[str, Any]:
    """The stored form of an event of ``event_type`` carrying its example as data, as the
    pipeline stores it and a filter sees it."""
    envelope = {
        "id": f"example-{uuid.uuid4().hex}",
        "source": "/eventhub/example",
        "specversion": "1.0",
        "type": event_type.name,
        "time": datetime.now(tz=UTC).isoformat(),
        "data": event_type.example,
    }
    return event_document(envelope, retention_days=1)


def filter_report(subscription: Subscription) -> list[str]:
    """The subscription's filter tried on the example of each event type it wants, and the
    stored events of the last days that its types and filter select (counted by MongoDB)."""
    lines = []
    wanted = [t for t in EventType.objects.order_by("name") if subscription.wants(t.name)]
    for event_type in wanted:
        if event_type.example is None:
            lines.append(f"{event_type.name}: no example to test against.")
        elif not subscription.filter:
            lines.append(f"{event_type.name}: its example is accepted (no filter).")
        else:
            accepted = matches(subscription.filter, example_document(event_type))
            verdict = "accepts" if accepted else "refuses"
            lines.append(f"{event_type.name}: the filter {verdict} its example.")
    if not wanted:
        lines.append("No event type matches its event types yet.")
    types = {} if "*" in subscription.event_types else type_condition(subscription.event_types)
    of_types = rule_backtest(conditions=types, days=BACKTEST_DAYS)
    selected = of_types
    if subscription.filter:
        condition = {"$and": [types, subscription.filter]} if types else subscription.filter
        selected = rule_backtest(conditions=condition, days=BACKTEST_DAYS)
    lines.append(
        f"Last {BACKTEST_DAYS} days: {selected['matched']} of the {of_types['matched']} stored "
        "events of its types pass its filter."
    )
    return lines


admin.site.unregister(Subscription)


@admin.register(Subscription)
class SubscriptionAdmin(webhooks.admin.SubscriptionAdmin):
    """Subscriptions with their filter's check on the change page and after each save."""

    readonly_fields = [*webhooks.admin.SubscriptionAdmin.readonly_fields, "filter_check"]

    @admin.display(description="filter check")
    def filter_check(self, obj: Subscription) -> str:
        if obj.pk is None:
            return "Shown once the subscription is saved."
        try:
            lines = filter_report(obj)
        except QueryError as exc:
            return f"The filter is not valid: {exc}"
        except Exception as exc:  # noqa: BLE001 - MongoDB down: the page still opens
            return f"Could not count the stored events: {type(exc).__name__}: {exc}"
        return format_html_join("", "<p>{}</p>", ((line,) for line in lines))

    def save_model(self, request: HttpRequest, obj: Subscription, form, change: bool) -> None:
        super().save_model(request, obj, form, change)
        if "filter" in form.changed_data or "event_types" in form.changed_data:
            try:
                report = " ".join(filter_report(obj))
            except Exception as exc:  # noqa: BLE001 - saved anyway; the check says why not
                report = f"The filter could not be checked: {type(exc).__name__}: {exc}"
            self.message_user(request, f"Filter of {obj}: {report}", messages.INFO)


class EventTypeFilter(admin.SimpleListFilter):
    """Deliveries of one event type, offered from the event types (a list of the types in
    the deliveries themselves would read the whole table)."""

    title = "event type"
    parameter_name = "event_type"

    def lookups(self, request: HttpRequest, model_admin) -> list[tuple[str, str]]:
        return [(name, name) for name in EventType.objects.values_list("name", flat=True)]

    def queryset(self, request: HttpRequest, queryset):
        return queryset.filter(event_type=self.value()) if self.value() else None


admin.site.unregister(Delivery)


@admin.register(Delivery)
class DeliveryAdmin(webhooks.admin.DeliveryAdmin):
    list_filter = [
        EventTypeFilter if item == "event_type" else item
        for item in webhooks.admin.DeliveryAdmin.list_filter
    ]


# the changelist's event counts by type, read once per request (a model admin is shared by
# every thread, so not kept on it)
_counts_24h: ContextVar[dict[str, int] | None] = ContextVar("counts_24h", default=None)


def _rendered(response):
    """The response with its template rendered now, while the counts are set."""
    render = getattr(response, "render", None)
    return render() if render is not None else response


admin.site.unregister(EventType)


@admin.register(EventType)
class EventTypeAdmin(events.admin.EventTypeAdmin):
    """Event types with their events of the last 24 hours (analytics' summary, the rollups)."""

    list_display = [*events.admin.EventTypeAdmin.list_display, "events_24h"]
    readonly_fields = [*events.admin.EventTypeAdmin.readonly_fields, "events_24h"]

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        token = _counts_24h.set(self._counts())
        try:
            return _rendered(super().changelist_view(request, extra_context))
        finally:
            _counts_24h.reset(token)

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None):
        token = _counts_24h.set(self._counts())
        try:
            return _rendered(super().change_view(request, object_id, form_url, extra_context))
        finally:
            _counts_24h.reset(token)

    @staticmethod
    def _counts() -> dict[str, int] | None:
        try:
            by_type = summary(Window.last(timedelta(hours=24)))["by_type"]
        except Exception:  # noqa: BLE001 - MongoDB down: the column says so, the page opens
            return None
        return {row["key"]: row["count"] for row in by_type}

    @admin.display(description="events 24 h")
    def events_24h(self, obj: EventType) -> str:
        counts = _counts_24h.get()
        if counts is None:
            return "unavailable"
        return str(counts.get(obj.name, 0))
