"""Local demo data: an admin user, a few event types, a subscriber whose subscription delivers
to the local demo receiver, and a rule. Idempotent.

For local use only: the admin password is printed and is not secret.
"""

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from accounts.roles import Role
from core.ssrf import UnsafeURL, check_url
from eventhub.demo import EVENT_TYPES, receiver_url
from events.models import EventType
from rules.models import Rule
from subscriptions.models import Subscriber, Subscription
from subscriptions.services import subscription_add_secret

# where the demo subscription points without a demo receiver (and pointed before there was one)
EXAMPLE_URL = "https://example.com/webhooks/eventhub"


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
        subscription, created = Subscription.objects.get_or_create(
            subscriber=subscriber,
            name="Payment problems",
            defaults={
                "url": self.demo_url(),
                "event_types": ["payment.*"],
                "filter": {"payload.amount": {"$gte": 10}},
            },
        )
        if created:
            subscription_add_secret(subscription=subscription)
        elif subscription.url == EXAMPLE_URL and settings.DEMO_RECEIVER_PORT:
            subscription.url = self.demo_url()
            subscription.save(update_fields=["url", "updated_at"])
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

    def demo_url(self) -> str:
        if not settings.DEMO_RECEIVER_PORT:
            return EXAMPLE_URL
        url = receiver_url()
        try:
            check_url(url)
        except UnsafeURL as exc:
            self.stderr.write(
                f"The demo subscription points at {url}, which the SSRF guard refuses ({exc}): "
                "add 127.0.0.1/32 to WEBHOOK_ALLOWED_NETWORKS in .env to let it deliver."
            )
        return url
