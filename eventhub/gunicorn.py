"""gunicorn's settings for the web process (``scripts/stack.py`` and docker-compose pass
``--config python:eventhub.gunicorn``): its own log lines as JSON like the application's, and
the workers' metrics shared through ``PROMETHEUS_MULTIPROC_DIR`` (prometheus_client's
multiprocess mode), which starts empty, and lets go of a worker that exited."""

from __future__ import annotations

import os
from pathlib import Path

from prometheus_client import multiprocess

from core.correlation import logging_config

_METRICS_DIR = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
if _METRICS_DIR:
    # before anything counts (the logging set up below does): a previous run's files would
    # count twice
    Path(_METRICS_DIR).mkdir(parents=True, exist_ok=True)
    for _stale in Path(_METRICS_DIR).glob("*.db"):
        _stale.unlink()

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
