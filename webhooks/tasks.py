"""Celery tasks of webhook delivery (thin: ids in, a service does the work).

``deliver`` runs on the ``webhooks`` queue, whose workers use a thread pool: each task hands
its batch to the process's sender, which keeps every request of every batch in flight at once,
and returns; recorder threads write the outcomes.
"""

from celery import shared_task
from django.conf import settings
from django.db import InterfaceError, OperationalError

from webhooks.services.dispatch import deliveries_send
from webhooks.services.queueing import deliveries_sweep


@shared_task(
    ignore_result=True,
    # PostgreSQL did not answer (restarting, failing over): the batch's deliveries are still
    # pending, so the task is tried again within seconds (a jittered backoff of at most 1, 2,
    # 4, then 8 s: at most about 45 s in all) rather than leaving them to wait for their lease
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=1,
    retry_backoff_max=8,
    max_retries=8,
)
def deliver(delivery_ids: list[int]) -> int:
    """Send one batch of deliveries (of one subscription); the outcomes are recorded as they
    arrive, without holding this worker thread."""
    return deliveries_send(ids=delivery_ids, background=settings.WEBHOOK_RECORD_IN_BACKGROUND)


@shared_task(ignore_result=True)
def sweep_deliveries() -> int:
    """Queue due retries, and deliveries whose task or worker was lost."""
    return deliveries_sweep()
