"""gunicorn's settings for the web process (``scripts/stack.py`` passes
``--config python:eventhub.gunicorn``): its own log lines as JSON like the application's, and
the metrics of a worker that exited are let go (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os

from prometheus_client import multiprocess

from core.correlation import logging_config

# requests are logged by the application (eventhub.middleware), with their request id
accesslog = None
logconfig_dict = logging_config(
    os.environ.get("LOG_FORMAT") or "json",
    os.environ.get("LOG_LEVEL") or "INFO",
    loggers={"gunicorn.error": {"handlers": [], "propagate": True}},
)


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
