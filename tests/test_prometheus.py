"""The alerts and the dashboard, checked with Prometheus's own tools, and a real Prometheus
(Debian's package, which scripts/services.py installs) scraping a running stack with the
scrape config of docs/prometheus and finding every metric the dashboard and alerts read."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml

from rules.models import Rule
from tests.rules.factories import RuleFactory
from tests.stack import Stack, free_port

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
ALERTS = DOCS / "prometheus" / "alerts.yml"
DASHBOARD = DOCS / "grafana" / "eventhub.json"

# what the issue asks for by name, and what the dashboard and the alerts read
METRICS = {
    "http_requests_total",
    "http_request_duration_seconds_bucket",
    "events_ingested_total",
    "events_rejected_total",
    "events_processed_total",
    "event_processing_duration_seconds_bucket",
    "kafka_consumer_lag",
    "queue_lag",
    "pipeline_stalled",
    "pipeline_quarantined_total",
    "pipeline_deliveries_total",
    "mongo_ops_total",
    "rules_matched_total",
    "errors_total",
    "service_uptime_seconds",
    "deliveries_total",
    "delivery_duration_seconds_bucket",
    "delivery_attempts_total",
    "subscriptions_disabled_total",
    "deliveries_waiting",
    "delivery_oldest_due_age_seconds",
    "dependency_up",
}


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is missing: scripts/services.py start installs Debian's prometheus"
    return path


def test_the_alert_rules_are_valid():
    result = subprocess.run(
        [tool("promtool"), "check", "rules", str(ALERTS)], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 8 rules found" in result.stdout


def test_the_alerts_fire_on_their_series_and_stay_quiet_on_others():
    result = subprocess.run(
        [tool("promtool"), "test", "rules", str(ALERTS.with_name("alerts.test.yml"))],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def dashboard_queries() -> list[str]:
    dashboard = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in dashboard["panels"] for target in panel.get("targets", [])]


def alert_queries() -> list[str]:
    return [
        rule["expr"]
        for group in yaml.safe_load(ALERTS.read_text())["groups"]
        for rule in group["rules"]
    ]


def test_the_dashboard_shows_what_the_issue_lists():
    text = " ".join(dashboard_queries())
    for name in (
        "events_ingested_total",
        "events_rejected_total",
        "kafka_consumer_lag",
        "events_processed_total",
        "deliveries_total",
        "delivery_duration_seconds_bucket",
        "deliveries_waiting",
        "delivery_oldest_due_age_seconds",
        "subscriptions_disabled_total",
    ):
        assert name in text, name


def metric_names(expressions: list[str]) -> set[str]:
    words = set(
        re.findall(
            r"[a-z_]+(?:_total|_seconds_bucket|_seconds|_lag|_up|_stalled|_waiting)\b",
            " ".join(expressions),
        )
    )
    return words - {"up"}


class Prometheus:
    def __init__(self, workdir: Path, stack: Stack) -> None:
        config = yaml.safe_load((DOCS / "prometheus" / "prometheus.yml").read_text())
        config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
        config["rule_files"] = [str(ALERTS)]
        targets = {
            "eventhub-web": stack.ports["web"],
            "eventhub-worker": stack.ports["worker"],
            "eventhub-webhooks": stack.ports["webhooks"],
            "eventhub-grpc": stack.ports["grpc"],
        }
        # the stack of this test runs neither the ASGI server nor Flower
        assert {job["job_name"] for job in config["scrape_configs"]} == {
            *targets,
            "eventhub-asgi",
            "celery-flower",
        }
        config["scrape_configs"] = [
            {**job, "static_configs": [{"targets": [f"127.0.0.1:{targets[job['job_name']]}"]}]}
            for job in config["scrape_configs"]
            if job["job_name"] in targets
        ]
        assert {job["job_name"] for job in config["scrape_configs"]} == set(targets)
        path = workdir / "prometheus.yml"
        path.write_text(yaml.safe_dump(config))
        self.port = free_port()
        self.process = subprocess.Popen(
            [
                tool("prometheus"),
                f"--config.file={path}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
            ],
            stdout=subprocess.DEVNULL,
            stderr=(workdir / "prometheus.log").open("wb"),
        )

    def api(self, path: str, **params: str) -> dict:
        url = f"http://127.0.0.1:{self.port}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        with urllib.request.urlopen(url, timeout=10) as response:
            return json.load(response)

    def names(self) -> set[str]:
        try:
            return set(self.api("label/__name__/values")["data"])
        except OSError:
            return set()

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(20)


@pytest.mark.django_db(transaction=True)
def test_a_real_prometheus_scrapes_every_process_of_the_stack(tmp_path, stack_scene):
    RuleFactory(
        name="every order",
        conditions={"payload.n": {"$gte": 0}},
        actions=[{"type": Rule.ActionType.NOTIFY, "message": "an order"}],
    )
    stack = Stack(tmp_path).start()
    prometheus = Prometheus(tmp_path, stack)
    try:
        assert stack_scene.publish(stack, {"n": 1}) == 202
        assert stack_scene.publish(stack, {}) == 422  # refused: counted by reason
        assert stack_scene.hook.wait_for(1, timeout=30), stack.log("webhooks")

        deadline = time.monotonic() + 60
        missing = METRICS
        while time.monotonic() < deadline:
            missing = METRICS - prometheus.names()
            if not missing:
                break
            time.sleep(1)
        assert not missing, f"not scraped: {sorted(missing)}"
        up = prometheus.api("query", query="up")["data"]["result"]
        assert {r["metric"]["job"]: r["value"][1] for r in up} == {
            "eventhub-web": "1",
            "eventhub-worker": "1",
            "eventhub-webhooks": "1",
            "eventhub-grpc": "1",
        }
        # both gunicorn workers' counts in one answer: the event went through one of them
        accepted = prometheus.api(
            "query", query='sum(events_ingested_total{type="order.created",door="rest"})'
        )
        assert float(accepted["data"]["result"][0]["value"][1]) == 1
        uptime = prometheus.api("query", query="service_uptime_seconds")["data"]["result"]
        assert {r["metric"]["service"] for r in uptime} == {
            "eventhub-web",
            "eventhub-worker",
            "eventhub-webhooks",
            "eventhub-grpc",
        }
        # every query of the dashboard and the alerts is one Prometheus accepts
        for expression in dashboard_queries() + alert_queries():
            assert prometheus.api("query", query=expression)["status"] == "success", expression
        assert metric_names(dashboard_queries() + alert_queries()) <= prometheus.names()
    finally:
        prometheus.stop()
        stack.stop()
