"""Every model is in the operator console, searchable and filterable, and its pages load."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.contrib.messages import get_messages
from django.urls import reverse

from accounts.models import ApiKey, AuditLog, hash_api_key
from tests.subscriptions.factories import SubscriberFactory
from tests.webhooks.factories import DeliveryAttemptFactory

PROJECT_APPS = ["accounts", "events", "subscriptions", "rules", "webhooks", "analytics"]
PROJECT_MODELS = [m for label in PROJECT_APPS for m in apps.get_app_config(label).get_models()]


def test_the_project_has_the_models_the_console_must_show():
    names = {m.__name__ for m in PROJECT_MODELS}
    assert {
        "EventType",
        "Subscriber",
        "Subscription",
        "SigningSecret",
        "Rule",
        "Delivery",
        "DeliveryAttempt",
        "ApiKey",
        "AuditLog",
    } <= names


@pytest.mark.parametrize("model", PROJECT_MODELS, ids=lambda m: m.__name__)
def test_every_model_has_an_admin_with_search_and_filters(model):
    assert admin.site.is_registered(model), f"{model.__name__} is not in the admin"
    model_admin = admin.site._registry[model]
    assert model_admin.search_fields, f"{model.__name__} admin has no search_fields"
    assert model_admin.list_filter, f"{model.__name__} admin has no list_filter"


@pytest.mark.django_db
@pytest.mark.parametrize("model", PROJECT_MODELS, ids=lambda m: m.__name__)
def test_every_changelist_loads_and_searches(model, admin_client_logged_in):
    DeliveryAttemptFactory()  # a delivery, subscription and subscriber to list
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    response = admin_client_logged_in.get(url, {"q": "payment"})
    assert response.status_code == 200


@pytest.mark.django_db
def test_creating_an_api_key_in_admin_shows_it_once_and_stores_the_hash(admin_client_logged_in):
    response = admin_client_logged_in.post(
        reverse("admin:accounts_apikey_add"), {"name": "shop", "role": "writer", "active": "on"}
    )
    assert response.status_code == 302
    words = " ".join(str(m) for m in get_messages(response.wsgi_request)).split()
    (plaintext,) = [word for word in words if word.startswith("ehk_")]
    api_key = ApiKey.objects.get(name="shop")
    assert api_key.key_hash == hash_api_key(plaintext)
    shown = admin_client_logged_in.get(response["Location"])  # the page after saving shows it
    assert plaintext in shown.content.decode()
    page = admin_client_logged_in.get(reverse("admin:accounts_apikey_change", args=[api_key.pk]))
    assert plaintext not in page.content.decode()


@pytest.mark.django_db
def test_creating_a_subscription_in_admin_shows_its_secret_once(admin_client_logged_in):
    subscriber = SubscriberFactory()
    response = admin_client_logged_in.post(
        reverse("admin:subscriptions_subscription_add"),
        {
            "subscriber": subscriber.pk,
            "name": "hook",
            "url": "http://127.0.0.1:9999/hook",
            "event_types": "order.*",
            "state": "active",
            "retry_schedule": "5,60",
            "timeout_seconds": 10,
            "headers": "{}",
            "output_format": "standard-webhooks",
            "secrets-TOTAL_FORMS": 0,
            "secrets-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    words = " ".join(str(m) for m in get_messages(response.wsgi_request)).split()
    (secret,) = [word for word in words if word.startswith("whsec_")]
    subscription = subscriber.subscriptions.get()
    assert subscription.secrets.get().secret == secret
    assert secret in admin_client_logged_in.get(response["Location"]).content.decode()
    page = admin_client_logged_in.get(
        reverse("admin:subscriptions_subscription_change", args=[subscription.pk])
    )
    assert secret not in page.content.decode()
    assert secret[:10] in page.content.decode()


@pytest.mark.django_db
def test_a_private_url_is_refused_in_admin(admin_client_logged_in, settings):
    settings.WEBHOOK_ALLOWED_NETWORKS = []
    subscriber = SubscriberFactory()
    response = admin_client_logged_in.post(
        reverse("admin:subscriptions_subscription_add"),
        {
            "subscriber": subscriber.pk,
            "url": "http://10.0.0.5/hook",
            "event_types": "order.*",
            "state": "active",
            "retry_schedule": "5",
            "timeout_seconds": 10,
            "headers": "{}",
            "output_format": "standard-webhooks",
            "secrets-TOTAL_FORMS": 0,
            "secrets-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 200
    assert "This URL is refused" in response.content.decode()
    assert not subscriber.subscriptions.exists()


@pytest.mark.django_db
def test_every_save_and_delete_in_the_console_is_audited_with_who(admin_client_logged_in):
    subscriber = SubscriberFactory(name="audited")
    change = reverse("admin:subscriptions_subscriber_change", args=[subscriber.pk])
    response = admin_client_logged_in.post(
        change,
        {
            "name": "audited",
            "contact_email": "ops@example.com",
            "active": "on",
            "subscriptions-TOTAL_FORMS": 0,
            "subscriptions-INITIAL_FORMS": 0,
        },
    )
    assert response.status_code == 302
    delete = reverse("admin:subscriptions_subscriber_delete", args=[subscriber.pk])
    assert admin_client_logged_in.post(delete, {"post": "yes"}).status_code == 302
    entries = AuditLog.objects.filter(object_id=str(subscriber.pk)).order_by("id")
    assert [(e.action, e.actor_label) for e in entries] == [
        ("subscriber.change", "root"),
        ("subscriber.delete", "root"),
    ]
    assert entries[0].changes == {"admin": [{"changed": {"fields": ["Contact email"]}}]}


@pytest.mark.django_db
def test_revoking_an_api_key_in_admin_refuses_it_and_is_audited(admin_client_logged_in, client):
    from accounts.services import api_key_create

    api_key, plaintext = api_key_create(name="to revoke", role="writer")
    assert client.get("/api/v1/event-types", HTTP_X_API_KEY=plaintext).status_code == 200
    response = admin_client_logged_in.post(
        reverse("admin:accounts_apikey_changelist"),
        {"action": "revoke", "_selected_action": [api_key.pk]},
    )
    assert [str(m) for m in get_messages(response.wsgi_request)] == ["Revoked 1 API key(s)."]
    assert client.get("/api/v1/event-types", HTTP_X_API_KEY=plaintext).status_code == 401
    assert AuditLog.objects.filter(action="api_key.revoke", object_id=str(api_key.pk)).exists()


def make_rows(count: int) -> None:
    """``count`` rows of every model, each with its own related rows (subscriptions without a
    name show their subscriber: a column or filter that loads it row by row is caught)."""
    from accounts.services import api_key_create, audit_log_record
    from rules.models import RuleMatch
    from tests.events.factories import EventTypeFactory
    from tests.rules.factories import RuleFactory
    from tests.subscriptions.factories import SigningSecretFactory, SubscriptionFactory
    from tests.webhooks.factories import DeliveryFactory

    for _ in range(count):
        subscription = SubscriptionFactory(name="")
        SigningSecretFactory(subscription=subscription)
        rule = RuleFactory()
        delivery = DeliveryFactory(subscription=subscription, rule=rule, attempts=1)
        DeliveryAttemptFactory(delivery=delivery, number=1, error_class="timeout")
        RuleMatch.objects.create(
            rule=rule, event_id=delivery.event_id, event_source="/test", event_type="a.b"
        )
        EventTypeFactory()
        api_key, _ = api_key_create(name=f"key {delivery.pk}", role="writer")
        audit_log_record(actor=None, action="test.made", obj=api_key)


@pytest.mark.django_db
@pytest.mark.parametrize("model", PROJECT_MODELS, ids=lambda m: m.__name__)
def test_no_changelist_queries_row_by_row(model, admin_client_logged_in, mongo_db):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    counts = []
    for rows in (3, 9):
        make_rows(rows if not counts else rows - 3)
        with CaptureQueriesContext(connection) as queries:
            response = admin_client_logged_in.get(url)
        assert response.status_code == 200
        assert len(response.context["cl"].result_list) >= rows
        counts.append(len(queries))
    assert counts[0] == counts[1], f"{counts[0]} queries for 3 rows, {counts[1]} for 9"


BIG_TABLES = ["Delivery", "DeliveryAttempt", "AuditLog", "RuleMatch"]


@pytest.mark.parametrize("name", BIG_TABLES)
def test_big_tables_neither_count_every_row_nor_sort_the_table(name):
    (model,) = [m for m in PROJECT_MODELS if m.__name__ == name]
    model_admin = admin.site._registry[model]
    assert model_admin.show_full_result_count is False
    ordering = model_admin.get_ordering(None) or model._meta.ordering
    # the primary key, or a unique index's leading columns, orders the page
    assert list(ordering) in (["-id"], ["delivery_id", "number"])
