"""List the dead-letter queue: dead deliveries, newest first, then how many there are."""

from __future__ import annotations

from datetime import timedelta

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import QuerySet

from core.durations import InvalidDuration, parse_duration
from webhooks.models import Delivery
from webhooks.services.actions import deliveries_for_replay

ERROR_WIDTH = 60


def dead_deliveries(
    *, since: timedelta | None, subscription_id: int | None, event_type: str | None
) -> QuerySet[Delivery]:
    """What ``replay_dlq`` replays with the same options; without ``since``, the whole DLQ."""
    if since is not None:
        return deliveries_for_replay(
            since=since, subscription_id=subscription_id, event_type=event_type
        )
    queryset = Delivery.objects.filter(status=Delivery.Status.DEAD, is_test=False)
    if subscription_id is not None:
        queryset = queryset.filter(subscription_id=subscription_id)
    if event_type:
        queryset = queryset.filter(event_type=event_type)
    return queryset


def one_line(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


class Command(BaseCommand):
    help = "List dead deliveries (the dead-letter queue), newest first, then their count."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since",
            help="Only those that died within this long, e.g. 30m, 2h, 1d (default: all).",
        )
        parser.add_argument("--subscription", type=int, help="Only this subscription's (id).")
        parser.add_argument("--event-type", help="Only this event type.")
        parser.add_argument("--limit", type=int, default=50, help="Rows to print (default 50).")

    def handle(
        self,
        *args,
        since: str | None,
        subscription: int | None,
        event_type: str | None,
        limit: int,
        **options,
    ) -> None:
        if limit < 1:
            raise CommandError("--limit must be at least 1.")
        try:
            window = parse_duration(since) if since is not None else None
        except InvalidDuration as exc:
            raise CommandError(f"--since: {exc}") from exc
        queryset = dead_deliveries(
            since=window, subscription_id=subscription, event_type=event_type
        )
        total = queryset.count()
        rows = list(queryset.select_related("subscription").order_by("-updated_at", "-id")[:limit])
        if rows:
            self.stdout.write(
                f"{'ID':>8}  {'DEAD AT (UTC)':19}  {'SUBSCRIPTION':24}  {'EVENT TYPE':24}  "
                f"{'EVENT (SOURCE ID)':48}  {'ATTEMPTS':>8}  LAST ERROR"
            )
        for delivery in rows:
            target = one_line(f"{delivery.subscription_id} {delivery.subscription}", 24)
            self.stdout.write(
                f"{delivery.pk:>8}  {delivery.updated_at:%Y-%m-%d %H:%M:%S}  {target:24}  "
                f"{one_line(delivery.event_type, 24):24}  "
                f"{one_line(f'{delivery.event_source} {delivery.event_id}', 48):48}  "
                f"{delivery.attempts:>8}  {one_line(delivery.last_error, ERROR_WIDTH)}"
            )
        shown = f" ({len(rows)} shown)" if total > len(rows) else ""
        self.stdout.write(f"{total} dead deliver{'y' if total == 1 else 'ies'}{shown}")
