"""Celery tasks of the events app (thin: they call services)."""

from celery import shared_task

from events.services import events_republish_spooled


@shared_task(ignore_result=True)
def republish_spooled() -> int:
    """Publish again the accepted events the broker refused after they were answered."""
    return events_republish_spooled()
