"""The operator console in a real browser: Playwright for Python drives Debian's chromium
(``scripts/services.py browser`` installs it; ``make test`` runs that first) against a live
server, the real services, the pipeline and a real webhook receiver.

One scenario, as an operator would go: log in, create an event type with a schema, a
subscriber and a subscription pointing at a local receiver, publish an event through the API,
see its delivery succeed with its attempt, rotate the secret, pause the subscription and see
the next delivery held, resume and release it, replay a dead delivery, and read the
dashboard's figures. A screenshot of each main page is saved under ``screenshots/`` (git
ignored).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from django.db import connections
from django.urls import reverse

from core import kafka
from pipeline.consumer import PipelineConsumer
from subscriptions.models import Subscription
from tests.helpers import Receiver, Reply
from webhooks.models import Delivery

CHROMIUM = Path("/usr/bin/chromium")
# what a machine without internet needs: no sandbox (root in a container), no GPU, nothing
# fetched in the background (component updates, safe browsing lists)
LAUNCH_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
]
SCREENSHOTS = Path(__file__).resolve().parent.parent / "screenshots"

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page(monkeypatch) -> Iterator:
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "no chromium: run `python scripts/services.py browser` (as root)"
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are
    # synchronous all the same
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    SCREENSHOTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=LAUNCH_FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(15_000)
        yield page
        browser.close()
        # while Playwright's loop runs, Django keeps this thread's connections apart (as for
        # async code): close those the test's own queries opened, or they outlive the test
        connections.close_all()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    found = Receiver()
    yield found
    found.close()


@pytest.fixture
def topic(settings, unique_name, clean_redis):
    settings.KAFKA_TOPIC_EVENTS = f"{unique_name}.events"
    settings.PIPELINE_GROUP_ID = f"{unique_name}-pipeline"
    kafka.ensure_topics([kafka.TopicSpec(settings.KAFKA_TOPIC_EVENTS, 1)])
    return settings.KAFKA_TOPIC_EVENTS


@pytest.fixture
def operator(roles, django_user_model):
    return django_user_model.objects.create_superuser("operator", "ops@example.com", "s3cret-pw")


def shot(page, name: str) -> None:
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def messages(page) -> str:
    return page.locator("ul.messagelist").inner_text()


def run_pipeline(events: int) -> None:
    assert PipelineConsumer(batch_timeout_ms=100).run(max_events=events, idle_exit_seconds=15) == (
        events
    )


def run_action(page, changelist: str, row_text: str, action: str) -> str:
    page.goto(changelist)
    page.locator("#result_list tr", has_text=row_text).locator("input.action-select").check()
    page.select_option("select[name=action]", action)
    page.click("button[name=index]")
    return messages(page)


def test_an_operator_finds_and_repairs_delivery_problems_in_the_console(
    live_server, browser_page, operator, receiver, topic, mongo_db, eager_tasks, writer_key
):
    page, base = browser_page, live_server.url

    def url(name: str, *args) -> str:
        return base + reverse(name, args=args)

    # log in
    page.goto(url("admin:index"))
    page.fill("#id_username", "operator")
    page.fill("#id_password", "s3cret-pw")
    page.click("input[type=submit]")
    assert page.locator("#eh-deliveries").is_visible()

    # an event type with a schema
    page.goto(url("admin:events_eventtype_add"))
    page.fill("#id_name", "invoice.overdue")
    schema = {
        "type": "object",
        "required": ["invoice"],
        "properties": {"invoice": {"type": "string"}, "days": {"type": "integer"}},
    }
    page.fill("#id_schema", json.dumps(schema))
    page.fill("#id_example", '{"invoice": "INV-1", "days": 3}')
    page.click("input[name=_save]")
    assert "was added successfully" in messages(page)
    shot(page, "event-types")

    # a subscriber, and a subscription to the local receiver (its secret shown once)
    page.goto(url("admin:subscriptions_subscriber_add"))
    page.fill("#id_name", "Accounts receivable")
    page.click("input[name=_save]")
    subscriber_id = (
        Subscription._meta.get_field("subscriber")
        .related_model.objects.get(name="Accounts receivable")
        .pk
    )
    page.goto(url("admin:subscriptions_subscription_add") + f"?subscriber={subscriber_id}")
    page.fill("#id_name", "overdue hook")
    page.fill("#id_url", receiver.url("/overdue"))
    page.fill("#id_event_types", "invoice.*")
    page.fill("#id_retry_schedule", "")  # a failure is final at once: the dead letter below
    page.click("input[name=_save]")
    (secret,) = re.findall(r"whsec_[A-Za-z0-9+/=]+", messages(page))
    subscription = Subscription.objects.get(name="overdue hook")
    assert subscription.valid_secrets() == [secret]

    # publish through the API; the pipeline routes it; the delivery succeeds with its attempt
    def publish(invoice: str) -> None:
        answer = page.request.post(
            base + "/api/v1/events",
            data=json.dumps({"event_type": "invoice.overdue", "data": {"invoice": invoice}}),
            headers={"X-API-Key": writer_key, "Content-Type": "application/json"},
        )
        assert answer.status == 202, answer.text()

    publish("INV-1")
    run_pipeline(1)
    page.goto(url("admin:webhooks_delivery_changelist") + "?q=")
    first = Delivery.objects.get(subscription=subscription)
    page.goto(url("admin:webhooks_delivery_change", first.pk))
    assert page.locator(".field-status .readonly, #id_status").first.is_visible()
    assert first.status == "succeeded"
    attempts = page.locator("#attempts_made-group").inner_text()
    assert "200" in attempts
    shot(page, "delivery")
    assert len(receiver.at("/overdue")) == 1

    # rotate the secret: the new one shown once
    changelist = url("admin:subscriptions_subscription_changelist")
    text = run_action(page, changelist, "overdue hook", "rotate_secret")
    (rotated,) = re.findall(r"whsec_[A-Za-z0-9+/=]+", text)
    assert rotated != secret and rotated in subscription.valid_secrets()

    # pause: the next delivery is held
    assert "Paused 1 subscription(s)." in run_action(page, changelist, "overdue hook", "pause")
    publish("INV-2")
    run_pipeline(1)
    held = Delivery.objects.get(subscription=subscription, status="held")
    page.goto(url("admin:webhooks_delivery_changelist") + "?status__exact=held")
    assert "Held" in page.locator("#result_list").inner_text()
    shot(page, "deliveries-held")

    # resume and release: it is sent (tasks run at once here), signed with both secrets
    text = run_action(page, changelist, "overdue hook", "resume_and_release")
    assert "Resumed 1 subscription(s); released 1 held deliveries." in text
    held.refresh_from_db()
    assert held.status == "succeeded"
    signature = receiver.at("/overdue")[-1].headers["webhook-signature"]
    assert len(signature.split()) == 2  # the old and the new secret, during the overlap
    shot(page, "subscriptions")

    # a delivery that fails dies at once (no retries); replay it from the dead letters
    receiver.reply("/overdue", Reply(status=500))
    publish("INV-3")
    run_pipeline(1)
    dead = Delivery.objects.get(subscription=subscription, status="dead")
    page.goto(url("admin:webhooks_delivery_dead_letters"))
    page.select_option("#id_since", "1h")
    page.click("input[name=count]")
    assert page.locator("#replay-count").inner_text() == "1 dead deliveries match."
    shot(page, "dead-letters")
    page.click("input[name=replay]")
    assert "Replayed 1 dead deliveries." in messages(page)
    dead.refresh_from_db()
    assert dead.status == "succeeded"

    # the dashboard's figures are the API's
    summary = page.request.get(
        base + "/api/v1/analytics/summary?since=1h", headers={"X-API-Key": writer_key}
    ).json()
    page.goto(url("admin:index"))
    shot(page, "dashboard")
    assert summary["total"] == 3
    assert page.locator('[data-figure="events-total"]').inner_text() == "3 events"
    hour = page.locator('tr[data-window="hour"]')
    assert hour.locator('[data-figure="total"]').inner_text() == str(summary["deliveries"]["total"])
    assert hour.locator('[data-figure="succeeded"]').inner_text() == "3"
    assert page.locator('[data-figure="dead-total"]').inner_text() == "0 dead deliveries"
    audit = page.goto(url("admin:accounts_auditlog_changelist"))
    assert audit.ok
    shot(page, "audit-log")
    actions = page.locator("#result_list").inner_text()
    for action in ["subscription.rotate_secret", "subscription.paused", "delivery.replay"]:
        assert action in actions
