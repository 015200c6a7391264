"""Replay dead deliveries (or another retryable status): print how many match, then queue
them again unless ``--dry-run``. Each replay is written to the audit log."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError, CommandParser

from core.durations import InvalidDuration, parse_duration
from subscriptions.models import Subscription
from webhooks.models import Delivery
from webhooks.services.actions import deliveries_replay
from webhooks.services.queueing import RETRYABLE

ACTOR_LABEL = "manage.py replay_dlq"


def deliveries(count: int) -> str:
    return f"{count} deliver{'y' if count == 1 else 'ies'}"


class Command(BaseCommand):
    help = "Queue again the deliveries that died (or reached --status) within --since."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since", required=True, help="How far back, e.g. 30m, 2h, 1d or seconds."
        )
        parser.add_argument("--subscription", type=int, help="Only this subscription's (id).")
        parser.add_argument("--event-type", help="Only this event type.")
        parser.add_argument(
            "--status",
            default=Delivery.Status.DEAD.value,
            choices=sorted(s.value for s in RETRYABLE),
            help="The status to replay (default dead).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Only count them.")

    def handle(
        self,
        *args,
        since: str,
        subscription: int | None,
        event_type: str | None,
        status: str,
        dry_run: bool,
        **options,
    ) -> None:
        try:
            window = parse_duration(since)
        except InvalidDuration as exc:
            raise CommandError(f"--since: {exc}") from exc
        if subscription is not None and not Subscription.objects.filter(pk=subscription).exists():
            raise CommandError(f"--subscription: there is no subscription {subscription}.")
        filters = {
            "since": window,
            "status": status,
            "subscription_id": subscription,
            "event_type": event_type or None,
        }
        count = deliveries_replay(**filters, dry_run=True)
        verb = "matches" if count == 1 else "match"
        self.stdout.write(f"{deliveries(count)} {verb} (status {status}, since {since}).")
        if dry_run:
            self.stdout.write("Dry run: nothing replayed.")
            return
        if not count:
            return
        replayed = deliveries_replay(**filters, actor_label=ACTOR_LABEL)
        self.stdout.write(f"Replayed {deliveries(replayed)}.")
