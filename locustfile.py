"""A load test of the publish API, as producers use it: 500 users, spawned 50 a second, each
sending one event a second (500 requests a second in all), mostly single events and now and
then a batch of ten; a run passes with p95 under 200 ms and at most 1 % errors.

    .venv/bin/pip install -r bench/requirements.txt
    EVENTHUB_API_KEY=ehk_... .venv/bin/locust -f locustfile.py --headless -u 500 -r 50 \\
        -t 60s --host http://127.0.0.1:8000

Credentials: a writer API key in ``EVENTHUB_API_KEY`` (``manage.py create_api_key load
--role writer``), or a writer's JWT access token in ``EVENTHUB_TOKEN``
(``POST /api/v1/auth/token``). Every event has an id of its own, so none is a duplicate.
``bench/p1_publish_latency.py`` measures the same door open loop, with CPU per request.
"""

from __future__ import annotations

import os
import uuid

from locust import FastHttpUser, constant_throughput, events, task


def credentials() -> dict[str, str]:
    key = os.environ.get("EVENTHUB_API_KEY")
    token = os.environ.get("EVENTHUB_TOKEN")
    if key:
        return {"X-API-Key": key}
    if token:
        return {"Authorization": f"Bearer {token}"}
    raise SystemExit("set EVENTHUB_API_KEY (a writer API key) or EVENTHUB_TOKEN (a JWT)")


def event(n: int) -> dict:
    return {
        "id": str(uuid.uuid4()),
        "event_type": "payment.failed",  # the demo data's type (make up seeds it)
        "user_id": f"load-user-{n % 1000}",
        "amount": 12.5,
        "data": {"currency": "EUR", "reason": "card_declined"},
    }


class Producer(FastHttpUser):
    wait_time = constant_throughput(1)  # one request a second per user

    def on_start(self) -> None:
        self.headers = {**credentials(), "Content-Type": "application/json"}
        self.sent = 0

    @task(20)
    def publish(self) -> None:
        self.sent += 1
        self.client.post("/api/v1/events", json=event(self.sent), headers=self.headers)

    @task(1)
    def publish_batch(self) -> None:
        batch = [event(self.sent + i) for i in range(10)]
        self.sent += 10
        self.client.post(
            "/api/v1/events/batch", json={"events": batch}, headers=self.headers, name="batch"
        )


@events.quitting.add_listener
def _judge(environment, **_kwargs) -> None:
    """Exit 1 when the run misses the profile's bounds (p95 200 ms, 1 % errors)."""
    stats = environment.stats.total
    if stats.fail_ratio > 0.01 or stats.get_response_time_percentile(0.95) > 200:
        environment.process_exit_code = 1
