"""The Celery application: configured from Django settings (``CELERY_*``), tasks found per app."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "eventhub.settings")

app = Celery("eventhub")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


def _add_pipeline_step(app: Celery) -> None:
    from click import Option

    from events.bootsteps import PipelineStep

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
