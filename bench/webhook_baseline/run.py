"""The baseline half of P4: django-webhook sending ``--webhooks`` webhooks to ``--url``.

    .venv/bin/python bench/webhook_baseline/run.py --url http://127.0.0.1:PORT/hook

Run by ``bench/p4_delivery_throughput.py`` (its own process: another Django project). It
migrates the baseline database (created when missing), subscribes one Webhook with a secret
to ``webhook_baseline.Order/create``, starts the package's Celery worker with Celery's default
pool (prefork, one process per core), creates one Order per webhook (each fires its webhook
from ``post_save`` through Celery) and waits until every ``WebhookEvent`` row is ``SUCCESS``.
Prints one JSON line with the figures, then removes its rows and stops the worker.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import sys
import time
import warnings
from pathlib import Path

BENCH = Path(__file__).resolve().parent.parent
# the package, not this file's folder (whose celery.py would shadow Celery itself)
sys.path[0] = str(BENCH)
os.environ["DJANGO_SETTINGS_MODULE"] = "webhook_baseline.settings"

import processes  # noqa: E402  (the benchmarks' environment: broker database 14)


def ensure_database() -> None:
    import dj_database_url
    import psycopg

    url = os.environ.get(
        "BASELINE_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/eventhub_bench_baseline"
    )
    config = dj_database_url.parse(url)
    with psycopg.connect(
        host=config["HOST"], port=config["PORT"] or 5432, user=config["USER"], dbname="postgres"
    ) as connection:
        connection.autocommit = True
        exists = connection.execute(
            "SELECT 1 FROM pg_database WHERE datname = %s", [config["NAME"]]
        ).fetchone()
        if not exists:
            connection.execute(f'CREATE DATABASE "{config["NAME"]}"')


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True)
    parser.add_argument("--webhooks", type=int, default=2000)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--timeout", type=float, default=600, help="give up after (s)")
    args = parser.parse_args()

    ensure_database()
    # django-webhook queries its tables from AppConfig.ready(); Django warns about it
    warnings.filterwarnings("ignore", message="Accessing the database during app initialization")
    import django

    django.setup()
    from celery import states
    from django.core.management import call_command
    from django_webhook.models import (
        Webhook,
        WebhookEvent,
        WebhookTopic,
        populate_topics_from_settings,
    )

    from webhook_baseline.models import Order

    call_command("migrate", verbosity=0)
    populate_topics_from_settings()  # ready() skipped it when the tables were not there yet
    processes.purge_broker_queue("bench-django-webhook")
    webhook = Webhook.objects.create(url=args.url)
    webhook.topics.add(WebhookTopic.objects.get(name="webhook_baseline.Order/create"))
    webhook.secrets.create(token=secrets.token_urlsafe(32))
    succeeded = WebhookEvent.objects.filter(webhook=webhook, status=states.SUCCESS)

    worker = processes.spawn(
        "django-webhook-worker",
        [
            str(processes.BIN / "celery"),
            "-A",
            "webhook_baseline",
            "worker",
            "--loglevel",
            "WARNING",
        ],
        PYTHONPATH=str(BENCH),
        DJANGO_SETTINGS_MODULE="webhook_baseline.settings",
    )
    try:
        # warm-up: the worker starts, its processes connect to PostgreSQL and Redis
        for n in range(args.warmup):
            Order.objects.create(number=n, amount=n, note="warm-up")
        if not processes.wait_until(lambda: succeeded.count() >= args.warmup, timeout=120):
            raise SystemExit("django-webhook: the warm-up webhooks were not delivered in 120 s")

        started = time.time()
        for n in range(args.webhooks):
            Order.objects.create(number=n, amount=n * 7, note="benchmark event")
        enqueued = time.time() - started
        target = args.warmup + args.webhooks
        done = processes.wait_until(
            lambda: succeeded.count() >= target, timeout=args.timeout, interval=0.1
        )
        seconds = time.time() - started
        delivered = succeeded.count() - args.warmup
        print(
            json.dumps(
                {
                    "webhooks": args.webhooks,
                    "delivered": delivered,
                    "complete": done,
                    "seconds": seconds,
                    "enqueue_seconds": enqueued,
                    "rate": delivered / seconds,
                    "events_rows": WebhookEvent.objects.filter(webhook=webhook).count()
                    - args.warmup,
                }
            ),
            flush=True,
        )
    finally:
        processes.stop(worker)
        processes.purge_broker_queue("bench-django-webhook")
        WebhookEvent.objects.filter(webhook=webhook).delete()
        Order.objects.all().delete()
        webhook.delete()


if __name__ == "__main__":
    main()
