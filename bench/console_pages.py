"""C1: the operator console's pages over big tables (default 1,000,000 deliveries with an
attempt each and as many audit entries): p50 / p95 / max and the queries of each page, through
the whole Django stack (session login, the admin views, templates; DEBUG off).

    .venv/bin/python bench/console_pages.py [--deliveries 1000000] [--repeat 10] [--keep]

Uses the benchmarks' own PostgreSQL and MongoDB databases (``eventhub_bench``, see README.md).
The rows are written by PostgreSQL itself (``generate_series``): a fifth of the deliveries
dead, the rest succeeded, spread over 7 days, over 50 subscriptions. With ``--keep`` they stay
for another run (``--reuse`` then skips the loading); otherwise they are removed.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import processes  # noqa: E402,F401 - the benchmarks' own databases

os.environ["DJANGO_DEBUG"] = "false"
os.environ.setdefault("DJANGO_SECRET_KEY", "benchmark-only-secret-key-" + "x" * 40)
os.environ.setdefault("DJANGO_ALLOWED_HOSTS", "testserver,localhost")

import django  # noqa: E402

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from subscriptions.models import Subscriber, Subscription  # noqa: E402
from webhooks.models import Delivery  # noqa: E402

SUBSCRIBER = "bench-console"
PAGES = [
    ("dashboard", "/admin/"),
    ("deliveries", "/admin/webhooks/delivery/"),
    ("deliveries dead", "/admin/webhooks/delivery/?status__exact=dead"),
    ("deliveries by error class", "/admin/webhooks/delivery/?error_class=http_5xx"),
    ("delivery search (webhook id)", "/admin/webhooks/delivery/?q=msg_{some_id}"),
    ("delivery search (event id)", "/admin/webhooks/delivery/?q=bench-{some_n}"),
    ("attempts", "/admin/webhooks/deliveryattempt/"),
    ("audit log", "/admin/accounts/auditlog/"),
    ("subscriptions", "/admin/subscriptions/subscription/"),
    ("dead letters count", "/admin/webhooks/delivery/dead-letters/?since=7d&count=1"),
]


def load(deliveries: int) -> None:
    subscriber, _ = Subscriber.objects.get_or_create(name=SUBSCRIBER)
    ids = []
    for n in range(50):
        subscription, _ = Subscription.objects.get_or_create(
            subscriber=subscriber,
            name=f"bench-console-{n}",
            defaults={"url": f"https://example.com/hooks/{n}", "event_types": ["*"]},
        )
        ids.append(subscription.pk)
    started = time.perf_counter()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO webhooks_delivery (event_id, event_source, event_type, subscription_id,
                partition_key, status, attempts, attempts_before_replay, last_error, is_test,
                created_at, updated_at, delivered_at, last_status_code)
            SELECT 'bench-' || n, '/bench-console', 'order.created', (%s::bigint[])[1 + n %% 50],
                '', CASE WHEN n %% 5 = 0 THEN 'dead' ELSE 'succeeded' END, 1, 0, '', false,
                now() - (n * interval '7 days' / %s), now() - (n * interval '7 days' / %s),
                CASE WHEN n %% 5 = 0 THEN NULL ELSE now() - (n * interval '7 days' / %s) END,
                CASE WHEN n %% 5 = 0 THEN 500 ELSE 200 END
            FROM generate_series(1, %s) AS n
            """,
            [ids, deliveries, deliveries, deliveries, deliveries],
        )
        cursor.execute(
            """
            INSERT INTO webhooks_deliveryattempt (delivery_id, number, request_headers,
                response_status, response_body, duration_ms, error_class, created_at)
            SELECT id, 1, '{}', last_status_code, '', 12,
                CASE WHEN status = 'dead' THEN 'http_5xx' ELSE '' END, created_at
            FROM webhooks_delivery WHERE event_source = '/bench-console'
            """
        )
        cursor.execute(
            """
            INSERT INTO accounts_auditlog (actor_label, action, object_id, object_repr, changes,
                created_at)
            SELECT 'bench', 'delivery.retry', n::text, 'bench', '{}',
                now() - (n * interval '7 days' / %s)
            FROM generate_series(1, %s) AS n
            """,
            [deliveries, deliveries],
        )
        cursor.execute("ANALYZE webhooks_delivery, webhooks_deliveryattempt, accounts_auditlog")
    print(
        f"loaded {deliveries:,} deliveries, attempts and audit entries in "
        f"{time.perf_counter() - started:.1f} s"
    )


def remove() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "DELETE FROM webhooks_deliveryattempt WHERE delivery_id IN (SELECT id FROM "
            "webhooks_delivery WHERE event_source = '/bench-console')"
        )
        cursor.execute("DELETE FROM webhooks_delivery WHERE event_source = '/bench-console'")
        cursor.execute("DELETE FROM accounts_auditlog WHERE actor_label = 'bench'")
    Subscription.objects.filter(subscriber__name=SUBSCRIBER).delete()
    Subscriber.objects.filter(name=SUBSCRIBER).delete()


class Counted:
    """A query wrapper that notes each query (the queries log is reset by every request)."""

    def __init__(self, queries: list[str]) -> None:
        self.queries = queries

    def __call__(self, execute, sql, params, many, context):
        self.queries.append(sql)
        return execute(sql, params, many, context)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--deliveries", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--reuse", action="store_true")
    args = parser.parse_args()
    if not args.reuse:
        remove()
        load(args.deliveries)
    user, _ = get_user_model().objects.get_or_create(
        username="bench-console", defaults={"is_staff": True, "is_superuser": True}
    )
    client = Client()
    client.force_login(user)
    some = Delivery.objects.filter(event_source="/bench-console").order_by("id")[1000]
    load_before = os.getloadavg()[0]
    print(f"{platform.node()}: {os.cpu_count()} cores, load {load_before:.2f}")
    print(f"{'page':<30} {'queries':>7} {'p50 ms':>8} {'p95 ms':>8} {'max ms':>8}")
    try:
        for name, template in PAGES:
            url = template.format(some_id=some.pk, some_n=some.event_id.removeprefix("bench-"))
            times = []
            queries: list[str] = []
            with connection.execute_wrapper(Counted(queries)):
                response = client.get(url)
            assert response.status_code == 200, (url, response.status_code)
            for _ in range(args.repeat):
                started = time.perf_counter()
                response = client.get(url)
                times.append((time.perf_counter() - started) * 1000)
                assert response.status_code == 200
            times.sort()
            p95 = times[min(len(times) - 1, int(len(times) * 0.95))]
            print(
                f"{name:<30} {len(queries):>7} {statistics.median(times):>8.1f} {p95:>8.1f} "
                f"{times[-1]:>8.1f}"
            )
    finally:
        if not args.keep:
            remove()
    print(f"load average at the end {os.getloadavg()[0]:.2f} (start {load_before:.2f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
