"""Local demo data: an admin user, a few event types, a subscriber and a rule. Idempotent.

For local use only: the admin password is printed and is not secret.
"""

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from accounts.roles import Role
from events.models import EventType
from rules.models import Rule
from subscriptions.models import Subscriber, Subscription
from subscriptions.services import subscription_add_secret

EVENT_TYPES = {
    "payment.failed": {
        "description": "A payment attempt was declined or errored.",
        "schema": {
            "type": "object",
            "required": ["amount", "currency"],
            "properties": {
                "amount": {"type": "number", "minimum": 0},
                "currency": {"type": "string", "pattern": "^[A-Z]{3}$"},
                "reason": {"type": "string"},
            },
        },
        "example": {"amount": 42.5, "currency": "EUR", "reason": "card_declined"},
    },
    "order.created": {
        "description": "A customer placed an order.",
        "schema": {
            "type": "object",
            "required": ["order_id", "total"],
            "properties": {"order_id": {"type": "string"}, "total": {"type": "number"}},
        },
        "example": {"order_id": "ord_1001", "total": 99.0},
    },
    "user.logged_in": {
        "description": "A user signed in.",
        "schema": {"type": "object", "properties": {"ip": {"type": "string"}}},
        "example": {"ip": "203.0.113.7"},
    },
}


class Command(BaseCommand):
    help = "Create a demo admin user and a little demo data (local use only)."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")
        parser.add_argument("--password", default="admin")

    def handle(self, *args, username: str, password: str, **options):
        User = get_user_model()
        user, user_created = User.objects.get_or_create(
            username=username, defaults={"is_staff": True, "is_superuser": True}
        )
        if user_created:
            user.set_password(password)
            user.save()
        user.groups.add(Group.objects.get(name=Role.ADMIN))

        for name, spec in EVENT_TYPES.items():
            EventType.objects.get_or_create(name=name, defaults=spec)

        subscriber, _ = Subscriber.objects.get_or_create(
            name="Demo billing service", defaults={"contact_email": "billing@example.com"}
        )
        # Created without the URL check: example.com is a documentation address.
        subscription, created = Subscription.objects.get_or_create(
            subscriber=subscriber,
            name="Payment problems",
            defaults={
                "url": "https://example.com/webhooks/eventhub",
                "event_types": ["payment.*"],
                "filter": {"payload.amount": {"$gte": 10}},
            },
        )
        if created:
            subscription_add_secret(subscription=subscription)
        Rule.objects.get_or_create(
            name="Repeated payment failures",
            defaults={
                "description": "Three failed payments of one user within ten minutes.",
                "conditions": {"type": "payment.failed"},
                "actions": [{"type": "notify", "message": "Check this customer's card."}],
                "threshold_count": 3,
                "threshold_window_seconds": 600,
                "threshold_key": "user_id",
                "cooldown_seconds": 3600,
            },
        )
        self.stdout.write(
            f"Demo admin: {username} / {password if user_created else '(password unchanged)'}"
            " (local use only)"
        )
