"""P1-P7 in one go (``make bench``): each benchmark in a process of its own, one after the
other, its output shown as it runs; the figures go to ``bench/results/<date>.json`` and to
``docs/benchmarks.md`` (date, machine, commands, each figure next to its target).

    .venv/bin/python bench/run.py [--full] [--only P1,P3]

Needs the stack ``make up`` runs (P1 and P2 measure it as it is). P3-P5 run on the benchmarks'
own data (``bench/processes.py``): this script creates their PostgreSQL database and MongoDB
indexes when missing. The quick mode takes a few minutes; ``--full`` the issue's sizes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime

import figures

ROOT = figures.ROOT
BENCH = ROOT / "bench"
PY = sys.executable
BENCH_ENV = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/eventhub_bench",
    "MONGO_DB": "eventhub_bench",
}

# (name, script, quick arguments, full arguments)
RUNS = [
    ("P1", "p1_publish_latency.py", ["--duration", "15", "--pause", "5"], ["--duration", "60"]),
    ("P2", "p2_batch_throughput.py", ["--events", "20000"], ["--events", "100000"]),
    ("P3", "p3_pipeline.py", ["--events", "20000"], ["--events", "100000"]),
    (
        "P4",
        "p4_delivery_throughput.py",
        ["--deliveries", "5000", "--layouts", "1x16x100", "--baseline-webhooks", "1000"],
        [],
    ),
    ("P5", "p5_latency.py", ["--duration", "20"], ["--duration", "60"]),
]
# Where a benchmark's data lives: the stack's (P1, P2) or the benchmarks' own (P3-P5).
OWN_DATA = {"P3", "P4", "P5"}

TARGETS = {
    "P1": "POST /api/v1/events at 500 req/s: p95 <= 25 ms, p99 <= 50 ms, 0 errors; web CPU per "
    "request <= 2x a bare DRF view's",
    "P2": "batch publish >= 30 % of raw confluent-kafka",
    "P3": "pipeline >= 15,000 events/s with 10 subscriptions",
    "P4": ">= 3,000 deliveries/s, >= 20x django-webhook",
    "P5": "publish -> received at 200 events/s: p50 <= 50 ms, p99 <= 250 ms",
    "P7": "a web worker <= 150 MB, the whole stack with its services <= 2 GB",
}


def prepare_own_data() -> None:
    """The benchmarks' database, migrated, and their MongoDB indexes (idempotent)."""
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as db:
        if not db.execute("SELECT 1 FROM pg_database WHERE datname = 'eventhub_bench'").fetchone():
            db.execute("CREATE DATABASE eventhub_bench")
    env = {**os.environ, **BENCH_ENV}
    for command in (["migrate", "--noinput", "-v", "0"], ["ensure_mongo_indexes"]):
        subprocess.run([PY, "manage.py", *command], cwd=ROOT, env=env, check=True)


def run(name: str, script: str, arguments: list[str]) -> dict:
    """Run one benchmark, showing its output; its figures (the FIGURES line)."""
    env = {**os.environ, **(BENCH_ENV if name in OWN_DATA else {})}
    argv = [PY, str(BENCH / script), *arguments]
    print(f"\n=== {name}: {' '.join(['bench/' + script, *arguments])}", flush=True)
    process = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE, text=True)
    found: dict = {}
    assert process.stdout is not None
    for line in process.stdout:
        if line.startswith("FIGURES "):
            found = json.loads(line[len("FIGURES ") :])[name]
        elif not line.startswith('{"time"'):  # the processes' own JSON logs
            print(line, end="", flush=True)
    if process.wait() != 0:
        print(f"{name} failed (exit {process.returncode})")
        return {"failed": process.returncode}
    found["command"] = " ".join([".venv/bin/python", f"bench/{script}", *arguments])
    return found


def settle(limit: float = 300.0) -> None:
    """Wait until the machine is quiet again: the stack digests what P1 and P2 published
    (the pipeline, the demo deliveries) for a while after they end, and would take the cores
    from the next benchmark."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        busy = figures.machine_busy(3.0)
        if busy < 0.25:
            return
        print(f"(waiting for the machine to settle: {busy:.0%} busy)", flush=True)
    print(f"(the machine did not settle within {limit:.0f} s; going on)")


def p7(results: dict) -> dict:
    """Peak memory under the P1 and P4 loads, from their figures."""
    found: dict = {}
    for path in ("api-key", "jwt"):
        p1 = results.get("P1", {}).get(path)
        if p1:
            found[f"P1 {path}"] = {
                "web_worker_mb": p1["web_worker_peak_memory_mb"],
                "stack_mb": p1["stack_peak_memory_mb"],
                "by_process_mb": p1["peak_memory_mb"],
            }
    p4 = results.get("P4", {}).get("peak_memory_mb")
    if p4:
        found["P4"] = {"by_process_mb": p4}
    return found


def markdown(results: dict, mode: str) -> str:
    machine = results.get("machine", {})
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench{' BENCH_ARGS=--full' if mode == 'full' else ''}` "
        f"(`bench/run.py`, {mode} mode) on {machine.get('date', '?')}: "
        f"{machine.get('cores', '?')} cores, load {machine.get('load_before', '?')} before the "
        f"run, Python {machine.get('python', '?')}, Django {machine.get('django', '?')}, DRF "
        f"{machine.get('drf', '?')}, kernel {machine.get('kernel', '?')}. The load generator, the "
        "services and every EventHub process share the machine. What each figure measures: "
        "[bench/README.md](../bench/README.md).",
        "",
        "| figure | target | measured |",
        "|---|---|---|",
    ]
    p1 = results.get("P1", {})
    for path in ("bare", "api-key", "jwt"):
        if path in p1:
            r = p1[path]
            ratio = p1.get(f"{path}_cpu_vs_bare")
            lines.append(
                f"| P1 {path} | {TARGETS['P1'] if path == 'api-key' else ''} | "
                f"{r['achieved_per_s']:.0f} of {r['rate']:.0f} req/s; p50 {r['p50_ms']} ms, p95 "
                f"{r['p95_ms']} ms, p99 {r['p99_ms']} ms; {r['errors']} errors; web CPU "
                f"{r['web_cpu_ms_per_request']} ms/request"
                + (f" ({ratio}x bare)" if ratio else "")
                + " |"
            )
    simple = {
        "P2": lambda r: f"{r['http_per_s']:,} vs {r['raw_per_s']:,} events/s = {r['ratio']:.1%}",
        "P3": lambda r: (
            f"{r['pipeline_per_s']:,} events/s, {r['cpu_us_per_event']} us CPU/event; "
            f"insert_many {r['insert_many_per_s']:,} docs/s ({r['ratio']:.1%})"
        ),
        "P4": lambda r: (
            f"{r['best_per_s']:,} deliveries/s"
            + (
                f"; django-webhook {r['baseline_per_s']:,}/s = {r['ratio']}x"
                if "ratio" in r
                else ""
            )
        ),
        "P5": lambda r: (
            f"{r['received']} received at {r['rate']:.0f}/s (batch timeout "
            f"{r['batch_timeout_ms']} ms): p50 {r['p50_ms']} ms, p95 {r['p95_ms']} ms, p99 "
            f"{r['p99_ms']} ms, max {r['max_ms']} ms"
        ),
    }
    for name, describe in simple.items():
        r = results.get(name)
        if r and "failed" not in r:
            lines.append(f"| {name} | {TARGETS[name]} | {describe(r)} |")
        elif r:
            lines.append(f"| {name} | {TARGETS[name]} | failed (exit {r['failed']}) |")
    for label, r in results.get("P7", {}).items():
        held = ", ".join(f"{k} {v:.0f}" for k, v in sorted(r["by_process_mb"].items()))
        total = f"; all {r['stack_mb']:.0f} MB" if "stack_mb" in r else ""
        if "web_worker_mb" in r:
            total += f"; largest web process {r['web_worker_mb']:.0f} MB"
        lines.append(f"| P7 under {label} | {TARGETS['P7']} | PSS MB: {held}{total} |")
    lines += ["", "Commands:", ""]
    for name in ("P1", "P2", "P3", "P4", "P5"):
        command = results.get(name, {}).get("command")
        if command:
            lines.append(f"- {name}: `{command}`")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="the issue's sizes (about 15 min)")
    parser.add_argument("--only", default="", help="comma-separated: P1,P2,P3,P4,P5")
    args = parser.parse_args()
    only = {name.strip().upper() for name in args.only.split(",") if name.strip()}
    if "web" not in figures.stack_processes():
        raise SystemExit("the stack is not running: make up")
    mode = "full" if args.full else "quick"
    results: dict = {"machine": figures.machine(), "mode": mode}
    figures.print_machine(results["machine"])
    chosen = [entry for entry in RUNS if not only or entry[0] in only]
    if any(name in OWN_DATA for name, *_ in chosen):
        prepare_own_data()
    for index, (name, script, quick, full) in enumerate(chosen):
        if index:
            settle()
        results[name] = run(name, script, full if args.full else quick)
    results["P7"] = p7(results)
    out = BENCH / "results"
    out.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    (out / f"{stamp}.json").write_text(json.dumps(results, indent=2))
    (ROOT / "docs" / "benchmarks.md").write_text(markdown(results, mode))
    print(f"\nfigures: bench/results/{stamp}.json and docs/benchmarks.md")


if __name__ == "__main__":
    main()
