"""A bounded stream of events through the REST API, as a careful producer sends it (every batch
retried until each event got an answer), and the tally of what the receiver got."""

from __future__ import annotations

import json
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import urllib3

from tests.helpers import Receiver

BATCH = 100
REQUEST_TIMEOUT = 30.0  # the producer's own; the API must answer well before it


@dataclass
class Answers:
    """What the API answered the producer, by HTTP status (0: no answer: refused, reset,
    timed out), with the longest wait and whether every 503 said when to come back."""

    by_status: Counter = field(default_factory=Counter)
    slowest: float = 0.0
    unavailable_without_retry_after: int = 0
    first_503_at: float | None = None
    last_503_at: float | None = None


class Producer(threading.Thread):
    """Publishes ``count`` events of ``event_type`` with ids ``<tag>-<n>`` in batches (sync
    mode: answered once the broker acknowledged). An event counts as accepted once the API
    answered ``accepted`` or ``duplicate`` (an earlier try got it in); a batch is sent again,
    with the events still unanswered, after a refusal, a 5xx, a reset or a timeout."""

    def __init__(
        self,
        url: str,
        key: str,
        *,
        event_type: str,
        tag: str,
        count: int,
        pace: float = 0.0,
        burst: float = 0.0,
    ) -> None:
        super().__init__(daemon=True, name=f"producer-{tag}")
        self.url = f"{url}/api/v1/events/batch"
        self.key = key
        self.event_type = event_type
        self.tag = tag
        self.count = count
        self.pace = pace  # seconds between batches
        self.burst = burst  # the share of the events sent first, unpaced
        self.accepted: set[str] = set()
        self.sent = 0  # events handed over (first tries)
        self.answers = Answers()
        self.lock = threading.Lock()
        self.http = urllib3.PoolManager(maxsize=2, retries=False)
        self.failure: BaseException | None = None

    def event(self, n: int) -> dict:
        return {
            "id": f"{self.tag}-{n}",
            "source": "/chaos",
            "specversion": "1.0",
            "type": self.event_type,
            "subject": f"user-{n % 97}",
            "data": {"n": n},
        }

    def run(self) -> None:
        try:
            for start in range(0, self.count, BATCH):
                end = min(start + BATCH, self.count)
                self._send_until_answered([self.event(n) for n in range(start, end)])
                if self.pace and end > self.burst * self.count:
                    time.sleep(self.pace)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            self.failure = exc

    def progress(self) -> float:
        with self.lock:
            return self.sent / self.count

    def _send_until_answered(self, events: list[dict]) -> None:
        with self.lock:
            self.sent += len(events)
        deadline = time.monotonic() + 600
        while events and time.monotonic() < deadline:
            status, body, retry_after, took = self._post(events)
            answers = self.answers
            answers.by_status[status] += 1
            answers.slowest = max(answers.slowest, took)
            if status == 503:
                now = time.monotonic()
                answers.first_503_at = answers.first_503_at or now
                answers.last_503_at = now
                if retry_after is None:
                    answers.unavailable_without_retry_after += 1
            if status == 200:
                results = body["results"]
                done = {r["id"] for r in results if r["status"] in ("accepted", "duplicate")}
                with self.lock:
                    self.accepted |= done
                events = [e for e in events if e["id"] not in done]
                if events:
                    time.sleep(0.5)
                continue
            time.sleep(min(retry_after or 0.5, 2.0))
        if events:
            raise AssertionError(f"{len(events)} events never accepted in 10 minutes")

    def _post(self, events: list[dict]) -> tuple[int, dict, float | None, float]:
        started = time.monotonic()
        try:
            response = self.http.request(
                "POST",
                self.url,
                body=json.dumps(events).encode(),
                headers={
                    "Content-Type": "application/cloudevents-batch+json",
                    "X-API-Key": self.key,
                },
                timeout=urllib3.Timeout(connect=5, read=REQUEST_TIMEOUT),
            )
        except urllib3.exceptions.HTTPError:
            return 0, {}, None, time.monotonic() - started
        took = time.monotonic() - started
        retry_after = response.headers.get("Retry-After")
        try:
            body = json.loads(response.data) if response.status == 200 else {}
        except ValueError:
            body = {}
        return response.status, body, float(retry_after) if retry_after else None, took


@dataclass
class Tally:
    """What the receiver got, against what was owed: every accepted event at every path."""

    accepted: int
    expected: int
    received: int  # distinct webhook-ids
    requests: int  # every request, duplicates included
    lost: int
    duplicated: int  # requests beyond the first of their webhook-id
    new_twice: int  # (event, subscription) pairs that came under two webhook-ids
    attempts_by_webhook_id: dict[str, int]

    def line(self, name: str, seconds: float) -> str:
        return (
            f"CHAOS {name}: accepted={self.accepted} expected={self.expected} "
            f"received={self.received} lost={self.lost} duplicated={self.duplicated} "
            f"new_twice={self.new_twice} requests={self.requests} seconds={seconds:.0f}"
        )


def tally(receiver: Receiver, accepted: set[str], paths: list[str]) -> Tally:
    expected = {(event_id, path) for event_id in accepted for path in paths}
    by_webhook_id: dict[str, int] = Counter()
    ids_of_pair: dict[tuple[str, str], set[str]] = defaultdict(set)
    with receiver.lock:
        received = list(receiver.received)
    for request in received:
        webhook_id = request.headers.get("webhook-id", "")
        by_webhook_id[webhook_id] += 1
        event_id = json.loads(request.body).get("id", "")
        ids_of_pair[(event_id, request.path)].add(webhook_id)
    return Tally(
        accepted=len(accepted),
        expected=len(expected),
        received=len(by_webhook_id),
        requests=len(received),
        lost=len(expected - set(ids_of_pair)),
        duplicated=sum(n - 1 for n in by_webhook_id.values()),
        new_twice=sum(1 for ids in ids_of_pair.values() if len(ids) > 1),
        attempts_by_webhook_id=dict(by_webhook_id),
    )


def wait_for_deliveries(
    receiver: Receiver,
    accepted: set[str],
    paths: list[str],
    *,
    timeout: float,
    settle: float = 3.0,
) -> Tally:
    """Wait until every owed delivery arrived (or ``timeout``), then ``settle`` seconds more
    for late duplicates; the tally."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if tally(receiver, accepted, paths).lost == 0:
            break
        time.sleep(2.0)
    time.sleep(settle)
    return tally(receiver, accepted, paths)
