"""The Celery application: configured from Django settings (``CELERY_*``), tasks found per app."""

import os

from celery import Celery
from celery.signals import task_postrun, task_prerun, worker_ready

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventhub.settings")

app = Celery("eventhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _add_pipeline_step(app: Celery) -> None:
    from click import Option

    from pipeline.bootsteps import PipelineStep

    app.user_options["worker"].add(
        Option(
            ["--pipeline"],
            is_flag=True,
            default=False,
            help="Also consume the events topic (the EventHub pipeline) in this worker.",
        )
    )
    app.steps["worker"].add(PipelineStep)


_add_pipeline_step(app)


@worker_ready.connect
def _serve_metrics(**kwargs) -> None:
    """Workers expose their own Prometheus metrics (pipeline, webhook attempts) on
    ``WORKER_METRICS_PORT`` when it is set: the web process cannot see their counters."""
    from django.conf import settings

    if settings.WORKER_METRICS_PORT:
        from core.metrics import serve_metrics

        serve_metrics(settings.WORKER_METRICS_PORT, settings.WORKER_METRICS_HOST)


@task_prerun.connect
def _task_request_id(task_id: str, task, **kwargs) -> None:
    """A task's log lines carry its task id as their request id (Flower shows the same)."""
    from core.correlation import bind_request_id

    task.request.eventhub_request_token = bind_request_id(task_id)


@task_postrun.connect
def _task_request_id_done(task_id: str, task, **kwargs) -> None:
    from core.correlation import unbind_request_id

    token = getattr(task.request, "eventhub_request_token", None)
    if token is not None:
        unbind_request_id(token)
