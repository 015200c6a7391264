"""gunicorn's settings for the web process (``scripts/stack.py`` passes
``--config python:eventhub.gunicorn``): its own log lines as JSON like the application's, and
the metrics of a worker that exited are let go (prometheus_client's multiprocess mode)."""

from __future__ import annotations

import os

from prometheus_client import multiprocess

_FORMAT = os.environ.get("LOG_FORMAT") or "json"

# requests are logged by the application (eventhub.middleware), with their request id
accesslog = None
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"correlation": {"()": "core.correlation.CorrelationFilter"}},
    "formatters": {
        "json": {
            "()": "pythonjsonlogger.json.JsonFormatter",
            "fmt": "%(asctime)s %(levelname)s %(name)s %(message)s",
            "rename_fields": {"asctime": "time", "levelname": "level", "name": "logger"},
        },
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": _FORMAT if _FORMAT in ("json", "plain") else "json",
            "filters": ["correlation"],
        }
    },
    "loggers": {
        "gunicorn.error": {"handlers": ["console"], "level": "INFO", "propagate": False},
    },
}


def child_exit(server, worker) -> None:
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.mark_process_dead(worker.pid)
