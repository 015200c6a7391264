"""Run the pipeline consumer in the foreground: ``python manage.py consume_events``."""

import signal

from django.conf import settings
from django.core.management.base import BaseCommand

from core.metrics import serve_metrics
from pipeline.consumer import PipelineConsumer


class Command(BaseCommand):
    help = "Consume the events topic: mirror to MongoDB, route, evaluate rules, create deliveries."

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=None)
        parser.add_argument("--batch-timeout-ms", type=int, default=None)
        parser.add_argument(
            "--idle-exit",
            type=float,
            default=None,
            help="Exit after this many seconds without messages (benchmarks, tests).",
        )
        parser.add_argument(
            "--metrics-port",
            type=int,
            default=settings.WORKER_METRICS_PORT,
            help="Serve Prometheus metrics on this port (default WORKER_METRICS_PORT; 0: off).",
        )

    def handle(self, *args, batch_size, batch_timeout_ms, idle_exit, metrics_port, **options):
        if metrics_port:
            serve_metrics(metrics_port, settings.WORKER_METRICS_HOST)
        consumer = PipelineConsumer(batch_size=batch_size, batch_timeout_ms=batch_timeout_ms)

        def stop(signum, frame):
            self.stderr.write("stopping: finishing the batch, committing, closing")
            consumer.stop()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        processed = consumer.run(idle_exit_seconds=idle_exit)
        self.stdout.write(f"processed {processed} message(s)")
