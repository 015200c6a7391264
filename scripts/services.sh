#!/usr/bin/env bash
# Start, stop or report PostgreSQL, Redis, MongoDB and Kafka: scripts/services.sh start|stop|status
# Needs the project's virtualenv (make venv); see scripts/services.py for what it does.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/services.py "$@"
