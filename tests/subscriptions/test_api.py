"""The subscribers and subscriptions API: CRUD by role, the secret shown once, validation as
problem+json, and the operator actions, against the real services and a real HTTP endpoint on
loopback."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from accounts.models import AuditLog
from subscriptions.models import Subscription
from subscriptions.services import subscription_add_secret
from tests.subscriptions.factories import SubscriberFactory, SubscriptionFactory
from tests.webhooks.factories import DeliveryFactory
from webhooks.models import Delivery

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


@dataclass
class Endpoint:
    """A webhook endpoint on loopback that records what it receives and answers ``status``."""

    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def endpoint() -> Iterator[Endpoint]:
    state = Endpoint()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(state.status)
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_port}/hook"
    yield state
    server.shutdown()
    server.server_close()


def post(client, credentials, path: str, body: dict | None = None, caller: str = "admin"):
    return client.post(path, body or {}, content_type="application/json", **credentials[caller])


def patch(client, credentials, path: str, body: dict, caller: str = "admin"):
    return client.patch(path, body, content_type="application/json", **credentials[caller])


def hooked(url: str, **fields) -> tuple[Subscription, str]:
    subscription = SubscriptionFactory(url=url, **fields)
    return subscription, subscription_add_secret(subscription=subscription)


def new_subscription(subscriber_id: int, **fields) -> dict:
    return {
        "subscriber": subscriber_id,
        "name": "billing",
        "url": "http://127.0.0.1:9/hook",
        "event_types": ["payment.*"],
        **fields,
    }


# --- subscribers -------------------------------------------------------------------------------


def test_admin_creates_a_subscriber_and_readers_list_them(client, credentials):
    response = post(
        client, credentials, "/api/v1/subscribers", {"name": "billing", "contact_email": "b@x.io"}
    )
    assert response.status_code == 201
    listed = client.get("/api/v1/subscribers", **credentials["reader"]).json()
    assert listed["next"] is None
    assert [(s["name"], s["contact_email"], s["active"]) for s in listed["results"]] == [
        ("billing", "b@x.io", True)
    ]


@pytest.mark.parametrize("caller", ["reader", "writer"])
def test_only_admins_change_subscribers(client, credentials, caller):
    subscriber = SubscriberFactory()
    created = post(client, credentials, "/api/v1/subscribers", {"name": "x"}, caller=caller)
    changed = patch(
        client, credentials, f"/api/v1/subscribers/{subscriber.pk}", {"name": "y"}, caller=caller
    )
    assert (created.status_code, changed.status_code) == (403, 403)
    assert created["Content-Type"] == PROBLEM
    subscriber.refresh_from_db()
    assert subscriber.name != "y"


def test_a_duplicate_subscriber_name_is_a_409_conflict(client, credentials):
    SubscriberFactory(name="billing")
    response = post(client, credentials, "/api/v1/subscribers", {"name": "billing"})
    assert response.status_code == 409
    assert response.json()["type"].endswith("/conflict")
    assert response["Content-Type"] == PROBLEM
    assert response.json()["errors"][0]["pointer"] == "/name"


def test_deleting_a_subscriber_whose_subscription_has_deliveries_is_a_409(client, credentials):
    delivery = DeliveryFactory()
    subscriber = delivery.subscription.subscriber
    response = client.delete(f"/api/v1/subscribers/{subscriber.pk}", **credentials["admin"])
    assert response.status_code == 409
    assert response["Content-Type"] == PROBLEM
    assert Delivery.objects.filter(pk=delivery.pk).exists()


# --- subscriptions: reads and writes -----------------------------------------------------------


def test_creating_a_subscription_shows_its_secret_once(client, credentials):
    subscriber = SubscriberFactory()
    response = post(client, credentials, "/api/v1/subscriptions", new_subscription(subscriber.pk))

    assert response.status_code == 201
    body = response.json()
    secret = body["secret"]
    assert secret.startswith("whsec_")
    subscription = Subscription.objects.get(pk=body["id"])
    assert subscription.secrets.get().secret == secret
    assert body["state"] == "active" and body["event_types"] == ["payment.*"]
    assert body["secret_hints"] == [
        {
            "hint": secret[:10] + "…",
            "created_at": body["secret_hints"][0]["created_at"],
            "expires_at": None,
        }
    ]
    assert AuditLog.objects.filter(action="subscription.create", object_id=str(body["id"])).exists()
    for caller in ("reader", "admin"):
        for path in ("/api/v1/subscriptions", f"/api/v1/subscriptions/{body['id']}"):
            read = client.get(path, **credentials[caller])
            assert read.status_code == 200
            assert secret not in read.content.decode() and '"secret"' not in read.content.decode()


def test_readers_see_health_fields(client, credentials):
    subscription = SubscriptionFactory()
    now = timezone.now()
    Subscription.objects.filter(pk=subscription.pk).update(
        consecutive_failures=3,
        last_error="HTTP 502",
        last_error_at=now,
        last_success_at=now,
        attempts_total=4,
        attempts_succeeded=1,
    )
    body = client.get(f"/api/v1/subscriptions/{subscription.pk}", **credentials["reader"]).json()
    assert body["consecutive_failures"] == 3 and body["last_error"] == "HTTP 502"
    assert body["success_rate"] == 0.25
    assert body["last_success_at"] is not None and body["last_error_at"] is not None
    assert body["state"] == "active" and body["state_reason"] == ""


def test_health_and_state_cannot_be_written(client, credentials):
    subscription = SubscriptionFactory()
    response = patch(
        client,
        credentials,
        f"/api/v1/subscriptions/{subscription.pk}",
        {"state": "disabled", "consecutive_failures": 99, "name": "renamed"},
    )
    assert response.status_code == 200
    subscription.refresh_from_db()
    assert (subscription.state, subscription.consecutive_failures) == ("active", 0)
    assert subscription.name == "renamed"


def test_subscriptions_filter_by_state(client, credentials):
    active = SubscriptionFactory()
    SubscriptionFactory(state="paused")
    response = client.get("/api/v1/subscriptions", {"state": "active"}, **credentials["reader"])
    assert [s["id"] for s in response.json()["results"]] == [active.pk]


def test_the_headers_are_write_only(client, credentials):
    subscriber = SubscriberFactory()
    response = post(
        client,
        credentials,
        "/api/v1/subscriptions",
        new_subscription(subscriber.pk, headers={"Authorization": "Bearer hunter2"}),
    )
    assert response.status_code == 201
    subscription = Subscription.objects.get(pk=response.json()["id"])
    assert subscription.headers == {"Authorization": "Bearer hunter2"}
    read = client.get(f"/api/v1/subscriptions/{subscription.pk}", **credentials["admin"])
    assert read.json()["header_names"] == ["Authorization"]
    assert "hunter2" not in response.content.decode() + read.content.decode()


def test_a_private_url_is_refused_with_a_422_problem_pointing_at_the_url(
    client, credentials, settings
):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    subscriber = SubscriberFactory()
    response = post(
        client,
        credentials,
        "/api/v1/subscriptions",
        new_subscription(subscriber.pk, url="http://10.0.0.5/hook"),
    )
    assert response.status_code == 422
    assert response["Content-Type"] == PROBLEM
    (error,) = response.json()["errors"]
    assert error["pointer"] == "/url" and "refused" in error["detail"]
    assert not Subscription.objects.exists()


def test_changing_the_url_to_a_private_one_is_refused(client, credentials, settings):
    subscription = SubscriptionFactory(url="http://127.0.0.1:9/hook")
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    response = patch(
        client,
        credentials,
        f"/api/v1/subscriptions/{subscription.pk}",
        {"url": "http://169.254.169.254/latest/meta-data"},
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["pointer"] == "/url"
    subscription.refresh_from_db()
    assert subscription.url == "http://127.0.0.1:9/hook"


@pytest.mark.parametrize(
    "fields, pointer, status",
    [
        ({"url": "not a url"}, "/url", 400),
        ({"event_types": []}, "/event_types", 400),
        ({"timeout_seconds": 500}, "/timeout_seconds", 400),
        ({"event_types": ["Payment Failed!"]}, "/event_types", 422),
        ({"filter": {"$where": "1"}}, "/filter", 422),
    ],
)
def test_invalid_fields_are_a_problem_pointing_at_the_field(
    client, credentials, fields, pointer, status
):
    subscriber = SubscriberFactory()
    response = post(
        client, credentials, "/api/v1/subscriptions", new_subscription(subscriber.pk, **fields)
    )
    assert response.status_code == status
    assert response["Content-Type"] == PROBLEM
    assert [e["pointer"] for e in response.json()["errors"]] == [pointer]
    assert not Subscription.objects.exists()


@pytest.mark.parametrize("caller", ["anonymous", "reader", "writer"])
def test_only_admins_create_subscriptions(client, credentials, caller):
    subscriber = SubscriberFactory()
    response = post(
        client, credentials, "/api/v1/subscriptions", new_subscription(subscriber.pk), caller
    )
    assert response.status_code in (401, 403)
    assert not Subscription.objects.exists()


def test_deleting_a_subscription_without_deliveries_works_and_with_them_is_a_409(
    client, credentials
):
    unused = SubscriptionFactory()
    used = DeliveryFactory().subscription
    assert (
        client.delete(f"/api/v1/subscriptions/{unused.pk}", **credentials["admin"]).status_code
        == 204
    )
    refused = client.delete(f"/api/v1/subscriptions/{used.pk}", **credentials["admin"])
    assert refused.status_code == 409
    assert refused.json()["type"].endswith("/in-use")
    assert Subscription.objects.filter(pk=used.pk).exists()


# --- actions -----------------------------------------------------------------------------------


def test_send_test_event_delivers_a_signed_request_and_returns_the_delivery(
    client, credentials, endpoint
):
    subscription, secret = hooked(endpoint.url, state="paused")
    response = post(client, credentials, f"/api/v1/subscriptions/{subscription.pk}/test")

    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "succeeded" and body["is_test"] is True
    assert body["event_type"] == "eventhub.test"
    (attempt,) = body["attempts_made"]
    assert attempt["number"] == 1 and attempt["response_status"] == 200
    ((headers, payload),) = endpoint.received
    assert headers["webhook-id"] == f"msg_{body['id']}"
    assert Webhook(secret).verify(payload, headers)["type"] == "eventhub.test"


def test_a_test_event_to_a_failing_endpoint_reports_the_failure(client, credentials, endpoint):
    endpoint.status = 500
    subscription, _ = hooked(endpoint.url)
    body = post(client, credentials, f"/api/v1/subscriptions/{subscription.pk}/test").json()
    assert body["status"] == "dead" and body["last_status_code"] == 500
    assert body["attempts_made"][0]["error_class"] == "http_5xx"
    assert len(endpoint.received) == 1  # one attempt, never retried


def test_rotating_the_secret_returns_the_new_one_once_and_both_sign_meanwhile(
    client, credentials, endpoint
):
    subscription, old = hooked(endpoint.url)
    response = post(client, credentials, f"/api/v1/subscriptions/{subscription.pk}/rotate-secret")

    assert response.status_code == 200
    new = response.json()["secret"]
    assert new.startswith("whsec_") and new != old
    hints = response.json()["secret_hints"]
    assert [h["hint"] for h in hints] == [new[:10] + "…", old[:10] + "…"]
    assert hints[0]["expires_at"] is None and hints[1]["expires_at"] is not None
    read = client.get(f"/api/v1/subscriptions/{subscription.pk}", **credentials["admin"])
    assert new not in read.content.decode()

    post(client, credentials, f"/api/v1/subscriptions/{subscription.pk}/test")
    ((headers, payload),) = endpoint.received
    for secret in (new, old):
        assert Webhook(secret).verify(payload, headers)["type"] == "eventhub.test"
    assert AuditLog.objects.filter(action="subscription.rotate_secret").count() == 1


def test_rotating_with_no_overlap_retires_the_old_secret_now(client, credentials):
    subscription, old = hooked("http://127.0.0.1:9/hook")
    response = post(
        client,
        credentials,
        f"/api/v1/subscriptions/{subscription.pk}/rotate-secret",
        {"overlap": "0s"},
    )
    new = response.json()["secret"]
    assert [h["hint"] for h in response.json()["secret_hints"]] == [new[:10] + "…"]
    assert subscription.valid_secrets() == [new]


def test_a_bad_overlap_is_a_400_problem(client, credentials):
    subscription, _ = hooked("http://127.0.0.1:9/hook")
    response = post(
        client,
        credentials,
        f"/api/v1/subscriptions/{subscription.pk}/rotate-secret",
        {"overlap": "a while"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["pointer"] == "/overlap"
    assert subscription.secrets.count() == 1


def test_pause_and_disable_record_the_reason(client, credentials):
    subscription = SubscriptionFactory()
    paused = post(
        client,
        credentials,
        f"/api/v1/subscriptions/{subscription.pk}/pause",
        {"reason": "maintenance window"},
    ).json()
    assert (paused["state"], paused["state_reason"]) == ("paused", "maintenance window")
    disabled = post(client, credentials, f"/api/v1/subscriptions/{subscription.pk}/disable").json()
    assert disabled["state"] == "disabled" and disabled["state_reason"] == "disabled by test-admin"
    actions = set(AuditLog.objects.values_list("action", flat=True))
    assert {"subscription.paused", "subscription.disabled"} <= actions


def test_resume_with_release_held_queues_the_held_deliveries(client, credentials):
    subscription = SubscriptionFactory(state="paused")
    held = [DeliveryFactory(subscription=subscription, status="held") for _ in range(2)]
    response = post(
        client,
        credentials,
        f"/api/v1/subscriptions/{subscription.pk}/resume",
        {"release_held": True},
    )
    assert response.status_code == 200
    body = response.json()
    assert (body["released"], body["held"]) == (2, 0)
    assert body["subscription"]["state"] == "active"
    assert set(
        Delivery.objects.filter(pk__in=[d.pk for d in held]).values_list("status", flat=True)
    ) == {"pending"}
    assert AuditLog.objects.get(action="subscription.release_held").changes == {"count": 2}


def test_resume_without_release_keeps_them_held(client, credentials):
    subscription = SubscriptionFactory(state="disabled", state_reason="410 Gone")
    DeliveryFactory(subscription=subscription, status="held")
    body = post(client, credentials, f"/api/v1/subscriptions/{subscription.pk}/resume").json()
    assert (body["released"], body["held"]) == (0, 1)
    assert body["subscription"]["state"] == "active"
    assert body["subscription"]["state_reason"] == ""


def test_released_deliveries_reach_the_endpoint(
    client, credentials, endpoint, store_event, eager_tasks, django_capture_on_commit_callbacks
):
    subscription, secret = hooked(endpoint.url, state="paused")
    event_id = store_event(data={"amount": 1})
    delivery = DeliveryFactory(subscription=subscription, event_id=event_id, status="held")

    with django_capture_on_commit_callbacks(execute=True):
        post(
            client,
            credentials,
            f"/api/v1/subscriptions/{subscription.pk}/resume",
            {"release_held": True},
        )

    ((headers, payload),) = endpoint.received
    assert Webhook(secret).verify(payload, headers)["id"] == event_id
    delivery.refresh_from_db()
    assert delivery.status == "succeeded"


@pytest.mark.parametrize("action", ["test", "rotate-secret", "pause", "resume", "disable"])
@pytest.mark.parametrize("caller", ["reader", "writer"])
def test_only_admins_run_actions(client, credentials, endpoint, action, caller):
    subscription, _ = hooked(endpoint.url)
    response = post(
        client, credentials, f"/api/v1/subscriptions/{subscription.pk}/{action}", caller=caller
    )
    assert response.status_code == 403
    assert response["Content-Type"] == PROBLEM
    assert endpoint.received == []
    subscription.refresh_from_db()
    assert subscription.state == "active" and subscription.secrets.count() == 1


def test_an_action_on_an_unknown_subscription_is_a_404_problem(client, credentials):
    response = post(client, credentials, "/api/v1/subscriptions/999999999/pause")
    assert response.status_code == 404
    assert response["Content-Type"] == PROBLEM


@pytest.mark.parametrize(
    "body, pointer",
    [
        ({"name": 0}, "/name"),  # DRF would store "0"
        ({"name": "ok", "active": "yes"}, "/active"),
        ({"name": "ok", "contact_email": ""}, "/contact_email"),  # no address is null
    ],
)
def test_a_value_of_another_json_type_is_a_400(client, credentials, body, pointer):
    response = post(client, credentials, "/api/v1/subscribers", body)
    assert response.status_code == 400
    assert [e["pointer"] for e in response.json()["errors"]] == [pointer]


def test_a_subscriber_without_an_email_shows_null(client, credentials):
    created = post(client, credentials, "/api/v1/subscribers", {"name": "quiet"})
    assert created.status_code == 201 and created.json()["contact_email"] is None
    explicit = post(
        client, credentials, "/api/v1/subscribers", {"name": "q2", "contact_email": None}
    )
    assert explicit.status_code == 201 and explicit.json()["contact_email"] is None


def test_the_items_of_a_list_have_the_json_type_too(client, credentials):
    subscriber = SubscriberFactory()
    body = new_subscription(subscriber.pk, retry_schedule=[5, "60"])
    response = post(client, credentials, "/api/v1/subscriptions", body)
    assert response.status_code == 400
    assert response.json()["errors"] == [
        {"pointer": "/retry_schedule", "detail": "/1: Expected an integer."}
    ]
