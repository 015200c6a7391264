"""Run the pipeline consumer inside the Celery worker, in a thread of the main process.

Switched on by ``PIPELINE_IN_WORKER=true`` or ``celery -A eventhub worker --pipeline``.
"""

from __future__ import annotations

import logging
import threading

from celery import bootsteps

logger = logging.getLogger(__name__)

RESTART_PAUSE_SECONDS = 5.0


class PipelineStep(bootsteps.StartStopStep):
    requires = {"celery.worker.components:Pool"}

    def __init__(self, worker, pipeline: bool = False, **options):
        from django.conf import settings

        self.enabled = bool(pipeline) or settings.PIPELINE_IN_WORKER
        self.consumer = None
        self.thread: threading.Thread | None = None

    def start(self, worker) -> None:
        from pipeline.consumer import PipelineConsumer

        self.consumer = PipelineConsumer()
        self.thread = threading.Thread(target=self._run, name="eventhub-pipeline", daemon=True)
        self.thread.start()
        logger.info("pipeline consumer started in the worker")

    def _run(self) -> None:
        # The loop waits out failing dependencies itself; should it still end on an error,
        # it is started again here, so the worker never lives on without its pipeline.
        while True:
            try:
                self.consumer.run()
                return
            except Exception:
                logger.exception("the pipeline consumer stopped on an error; starting it again")
            if self.consumer.stopping.wait(RESTART_PAUSE_SECONDS):
                return

    def stop(self, worker) -> None:
        if self.consumer is not None:
            self.consumer.stop()
        if self.thread is not None:
            self.thread.join(timeout=30)
