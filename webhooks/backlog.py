"""What waits to be delivered, read from PostgreSQL when Prometheus scrapes the web.

``deliveries_waiting{status}``: unfinished deliveries (pending, retrying, in flight, held).
``delivery_oldest_due_age_seconds``: how long the oldest delivery that is due has gone unsent
(pending since it became pending, retrying since its retry fell due; 0 when none waits). It
grows when tasks are lost and the sweeper cannot queue them again (Redis gone, beat stopped),
when no worker takes them, or when retries never come to an end: the stuck-delivery signal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from django.db import connection
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from webhooks.models import UNFINISHED_STATUSES, Delivery

logger = logging.getLogger(__name__)
Status = Delivery.Status
TABLE = Delivery._meta.db_table


@dataclass(frozen=True)
class Backlog:
    waiting: dict[str, int]
    oldest_due_at: datetime | None

    def oldest_due_age(self, now: datetime) -> float:
        if self.oldest_due_at is None:
            return 0.0
        return max(0.0, (now - self.oldest_due_at).total_seconds())


def deliveries_backlog(*, now: datetime) -> Backlog:
    """Unfinished deliveries by status, and when the oldest due one fell due."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"""
            SELECT status, count(*),
                min(CASE WHEN status = %s THEN updated_at
                         WHEN status = %s AND next_attempt_at <= %s THEN next_attempt_at END)
            FROM {TABLE} WHERE status = ANY(%s) GROUP BY status
            """,
            [Status.PENDING, Status.RETRYING, now, list(UNFINISHED_STATUSES)],
        )
        rows = cursor.fetchall()
    waiting = {str(status): 0 for status in UNFINISHED_STATUSES}
    due = []
    for status, count, due_at in rows:
        waiting[status] = count
        if due_at is not None:
            due.append(due_at)
    return Backlog(waiting=waiting, oldest_due_at=min(due, default=None))


class BacklogCollector(Collector):
    """The backlog's gauges, computed at each scrape (two index scans)."""

    def collect(self) -> Iterable[Metric]:
        now = timezone.now()
        try:
            backlog = deliveries_backlog(now=now)
        except Exception as exc:  # noqa: BLE001 - a scrape must answer; the gauges go missing
            logger.warning("could not read the delivery backlog: %s", exc)
            return
        waiting = GaugeMetricFamily(
            "deliveries_waiting", "Unfinished deliveries by status", labels=["status"]
        )
        for status, count in backlog.waiting.items():
            waiting.add_metric([status], count)
        yield waiting
        yield GaugeMetricFamily(
            "delivery_oldest_due_age_seconds",
            "How long the oldest delivery that is due has gone unsent",
            value=backlog.oldest_due_age(now),
        )
