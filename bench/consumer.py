"""The pipeline consumer as the delivery benchmarks (P5, P6) run it.

    .venv/bin/python bench/consumer.py [--batch-timeout-ms 20] [--what-if-fetch-wait-max-ms 10]

``manage.py consume_events`` itself, with the ``deliver`` tasks it queues routed to the
benchmark run's own queue (``BENCH_WEBHOOKS_QUEUE``, see ``bench/processes.py``). With
``--what-if-fetch-wait-max-ms`` one key is added to ``pipeline.consumer.consumer_config()`` in
this process only (the application's code is untouched): librdkafka's ``fetch.wait.max.ms``,
whose default is 500 ms (the old local broker, Tansu, held a fetch that long even when messages
arrived meanwhile; Apache Kafka answers as soon as there is data).
"""

from __future__ import annotations

import argparse
import sys

import processes

sys.path.insert(0, str(processes.ROOT))

import django  # noqa: E402

django.setup()
processes.route_deliveries_to_bench_queue()

from django.core.management import call_command  # noqa: E402

from pipeline import consumer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-timeout-ms", type=int, default=None)
    parser.add_argument("--what-if-fetch-wait-max-ms", type=int, default=None)
    args = parser.parse_args()
    if args.what_if_fetch_wait_max_ms is not None:
        shipped = consumer.consumer_config

        def consumer_config() -> dict:
            return {**shipped(), "fetch.wait.max.ms": args.what_if_fetch_wait_max_ms}

        consumer.consumer_config = consumer_config
    call_command("consume_events", batch_timeout_ms=args.batch_timeout_ms)


if __name__ == "__main__":
    main()
