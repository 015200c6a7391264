"""The operator console's index is a dashboard whose figures are the API's and the health
checks' own, read from the real PostgreSQL, MongoDB and Redis."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from analytics.rollups import rollups_add
from core import mongo
from core.documents import event_document
from eventhub import dashboard as dashboard_module
from pipeline.lag import LagReport, LagWatch
from subscriptions.models import Subscription
from tests.subscriptions.factories import SubscriptionFactory
from tests.webhooks.factories import DeliveryFactory
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db

INDEX = reverse("admin:index")


def store_events(db, type_counts: dict[str, int], *, now: datetime) -> None:
    """Store events of the last half hour as the pipeline does, counted in the rollups."""
    documents = []
    for event_type, count in type_counts.items():
        for n in range(count):
            envelope = {
                "id": uuid.uuid4().hex,
                "source": "/dashboard-test",
                "specversion": "1.0",
                "type": event_type,
                "time": (now - timedelta(minutes=2 + 3 * n)).isoformat(),
                "severity": 8 if event_type == "payment.failed" else 2,
                "data": {"amount": 1},
            }
            documents.append(event_document(envelope, retention_days=7))
    db[mongo.EVENTS].insert_many(documents)
    assert rollups_add(documents) == len(documents)


def figure(page: str, name: str, within: str = "") -> str:
    """The text of the element marked ``data-figure="name"`` (after ``within``, if given)."""
    start = page.index(within) if within else 0
    found = re.search(rf'data-figure="{name}"[^>]*>(.*?)</(?:td|span|a|p)>', page[start:], re.S)
    assert found, f"no figure {name!r} on the page"
    return re.sub(r"<[^>]+>", "", found.group(1)).strip()


@pytest.fixture
def pipeline_report(settings):
    """A consumer's report in Redis, written as the pipeline's LagWatch writes it."""
    watch = LagWatch(consumer=None, interval=5)
    report = LagReport(member=watch.member, lag=7, stalled=True, idle_seconds=42.0)
    report.checked_at = datetime.now(tz=UTC).timestamp()
    watch._publish(report)
    yield report
    watch.forget()


def test_the_dashboard_shows_the_figures_the_api_gives(
    admin_client_logged_in, client, credentials, mongo_db, pipeline_report
):
    now = timezone.now()
    store_events(mongo_db, {"order.created": 5, "payment.failed": 3}, now=now)
    failing = SubscriptionFactory(name="failing-one")
    Subscription.objects.filter(pk=failing.pk).update(consecutive_failures=3, last_error="HTTP 500")
    SubscriptionFactory(name="paused-one", state="paused", state_reason="maintenance")
    SubscriptionFactory(name="disabled-one", state="disabled", state_reason="410 Gone")
    for _ in range(2):
        DeliveryFactory(subscription=failing, status="succeeded", delivered_at=now)
    DeliveryFactory(subscription=failing, status="dead")
    overdue = DeliveryFactory(
        subscription=failing, status="retrying", next_attempt_at=now - timedelta(minutes=5)
    )
    DeliveryFactory(
        subscription=failing, status="retrying", next_attempt_at=now + timedelta(hours=1)
    )

    page = admin_client_logged_in.get(INDEX).content.decode()
    api = client.get("/api/v1/analytics/summary?since=1h", **credentials["reader"]).json()

    assert figure(page, "events-total") == f"{api['total']} events" == "8 events"
    assert (
        figure(page, "events-errors").startswith(f"{api['errors']} errors") and api["errors"] == 3
    )
    for row in api["by_type"]:
        assert figure(page, "type-total", f'data-type="{row["key"]}"') == str(row["count"])
    hour = api["deliveries"]
    assert figure(page, "total", 'data-window="hour"') == str(hour["total"]) == "5"
    assert figure(page, "succeeded", 'data-window="hour"') == str(hour["succeeded"]) == "2"
    assert figure(page, "dead", 'data-window="hour"') == str(hour["dead"]) == "1"
    assert figure(page, "success-rate", 'data-window="hour"') == f"{hour['success_rate']:.1%}"
    assert figure(page, "dead-total") == "1 dead deliveries"
    assert f"delivery {overdue.pk} (retrying), due 5 min" in figure(page, "oldest-due")
    assert figure(page, "failing") == "1 failing"
    assert figure(page, "paused") == "1 paused"
    assert figure(page, "disabled") == "1 disabled"
    assert "maintenance" in page and "410 Gone" in page
    assert figure(page, "lag") == "7 messages behind"
    assert figure(page, "stalled") == "1 of 1 consumers stalled"


def test_the_per_minute_chart_has_a_bar_per_minute_and_counts_every_event(mongo_db):
    now = timezone.now()
    store_events(mongo_db, {"order.created": 4}, now=now)
    (series,) = dashboard_module.events_section(now)["series"]
    assert series["type"] == "order.created" and series["total"] == 4
    assert sum(point["count"] for point in series["points"]) == 4
    assert len(series["bars"]) == series["width"] in (60, 61)
    assert max(bar["height"] for bar in series["bars"]) == dashboard_module.CHART_HEIGHT
    assert sum(1 for bar in series["bars"] if bar["height"]) == 4  # 3 minutes apart


def test_a_quiet_stack_says_so(admin_client_logged_in, mongo_db):
    page = admin_client_logged_in.get(INDEX).content.decode()
    assert "No events in the last hour" in page
    assert figure(page, "oldest-due") == "nothing overdue"
    assert "No pipeline consumer has reported lately" in page


def test_a_dependency_that_is_down_blanks_its_section_only(admin_client_logged_in, settings):
    # MongoDB on a port where nothing listens: the events section reports it, the rest shows
    settings.MONGO_URL = "mongodb://127.0.0.1:9/?serverSelectionTimeoutMS=200"
    settings.MONGO_TIMEOUT_MS = 200
    mongo.close_client()
    try:
        response = admin_client_logged_in.get(INDEX)
    finally:
        mongo.close_client()
    page = response.content.decode()
    assert response.status_code == 200
    assert "Unavailable: ServerSelectionTimeoutError" in page
    assert figure(page, "oldest-due") == "nothing overdue"


def test_the_dashboard_reads_a_bounded_number_of_rows(
    admin_client_logged_in, mongo_db, django_assert_max_num_queries, monkeypatch
):
    subscription = SubscriptionFactory()
    Delivery.objects.bulk_create(
        Delivery(
            event_id=str(n),
            event_source="/s",
            event_type="a.b",
            subscription=subscription,
            status="dead",
        )
        for n in range(30)
    )
    monkeypatch.setattr(dashboard_module, "DEAD_COUNT_CAP", 25)
    # a fixed number whatever the rows: session and user, three delivery summaries (two
    # queries each), the capped dead count, two overdue reads, two of subscriptions, the log
    with django_assert_max_num_queries(14):
        page = admin_client_logged_in.get(INDEX).content.decode()
    assert figure(page, "dead-total") == "25+ dead deliveries"
