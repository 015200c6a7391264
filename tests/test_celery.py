"""The Celery app's own hooks: a task's log lines carry its task id as their request id."""

from __future__ import annotations

from celery.signals import task_postrun, task_prerun

from core.correlation import current_request_id
from eventhub.celery import app  # noqa: F401 - connects the app's signal handlers
from webhooks.tasks import sweep_deliveries


def test_a_task_runs_with_its_task_id_as_request_id():
    task = sweep_deliveries
    task.push_request(id="task-1")
    try:
        task_prerun.send(sender=task, task_id="task-1", task=task, args=(), kwargs={})
        assert current_request_id() == "task-1"
        task_postrun.send(sender=task, task_id="task-1", task=task, args=(), kwargs={})
        assert current_request_id() is None
    finally:
        task.pop_request()
