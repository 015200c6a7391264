"""P1: single-event ``POST /api/v1/events`` at a fixed request rate (open loop), through the
API-key and the JWT paths, next to a bare DRF view on the same server settings, in one run.

    .venv/bin/python bench/p1_publish_latency.py [--rate 500 --duration 60] [--paths ...]

Against the stack ``make up`` runs (its production configuration: DEBUG off, the pipeline
consuming, the demo subscription delivering to the demo receiver). Requests are sent on a
fixed schedule whether or not earlier ones have finished, and each latency is measured from
its scheduled send time, so a slow server cannot hide its queueing (no coordinated omission).
Keep-alive HTTP/1.1 connections over raw asyncio streams keep the generator cheap, since it
shares the machine's cores with the server.

For each path: p50 / p95 / p99 / max latency, the achieved rate, the errors, the web
process's CPU per request, and the CPU per request and peak memory (PSS) of every process of
the stack and its services (P7). ``bare`` is ``bench/bare`` (one DRF view that parses the body
and answers 202: no authentication, throttles nor EventHub's middleware) on gunicorn with the
web process's arguments.
The run makes a writer key and a writer user for itself and deletes them at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request

import figures

ROOT = figures.ROOT
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "scripts"))

BODY = {
    "event_type": "payment.failed",
    "user_id": "bench-user",
    "amount": 12.5,
    "data": {"currency": "EUR", "reason": "card_declined"},
}
PATHS = ("bare", "api-key", "jwt")


def request_bytes(host: str, port: int, path: str, header: str) -> bytes:
    body = json.dumps(BODY).encode()
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n{header}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for line in lines[1:]:
        name, _, value = line.partition(":")
        if name.lower() == "content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def open_loop(
    host: str, port: int, payload: bytes, rate: float, duration: float, connections: int
) -> dict:
    queue: asyncio.Queue[float | None] = asyncio.Queue()
    latencies: list[float] = []
    errors: dict[str, int] = {}

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        while True:
            scheduled = await queue.get()
            if scheduled is None:
                writer.close()
                return
            try:
                writer.write(payload)
                status = await read_response(reader)
                if status != 202:
                    errors[str(status)] = errors.get(str(status), 0) + 1
            except (OSError, asyncio.IncompleteReadError) as exc:
                errors[type(exc).__name__] = errors.get(type(exc).__name__, 0) + 1
                reader, writer = await asyncio.open_connection(host, port)
            latencies.append(time.perf_counter() - scheduled)

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    await asyncio.sleep(0.5)  # connections open before the clock starts
    interval = 1.0 / rate
    total = int(rate * duration)
    start = time.perf_counter()
    for i in range(total):
        scheduled = start + i * interval
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait(scheduled)
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    elapsed = time.perf_counter() - start
    ordered = sorted(latencies)

    def pct(p: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] * 1000, 1)

    return {
        "rate": rate,
        "duration_s": duration,
        "requests": len(latencies),
        "achieved_per_s": round(len(latencies) / elapsed, 1),
        "p50_ms": pct(50),
        "p95_ms": pct(95),
        "p99_ms": pct(99),
        "max_ms": round(ordered[-1] * 1000, 1),
        "mean_ms": round(statistics.mean(ordered) * 1000, 1),
        "errors": sum(errors.values()),
        "errors_by_kind": errors,
    }


def wait_answers(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            request = urllib.request.Request(
                url, data=b"{}", headers={"Content-Type": "application/json"}
            )
            urllib.request.urlopen(request, timeout=1)  # noqa: S310 - loopback
            return
        except urllib.error.HTTPError:
            return  # it answers
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout:.0f} s")


def start_bare(port: int) -> subprocess.Popen:
    """bench/bare on gunicorn with the web process's arguments (workers, threads, configs)."""
    import stack

    argv = stack.processes()["web"]
    argv[argv.index("eventhub.wsgi")] = "bench.bare.wsgi"
    argv[argv.index("--bind") + 1] = f"127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
    process = subprocess.Popen(
        argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    wait_answers(f"http://127.0.0.1:{port}/api/v1/events")
    return process


def served_by(pid: int):
    return lambda: {"web": [pid, *figures.children(pid)]}


def run_path(name: str, args, header: str, port: int, discover) -> dict:
    payload = request_bytes("127.0.0.1", port, "/api/v1/events", header)
    watch = figures.Watch(discover)
    result = asyncio.run(
        open_loop("127.0.0.1", port, payload, args.rate, args.duration, args.connections)
    )
    cpu, peak = watch.stop()
    served = max(1, result["requests"])
    result["web_cpu_ms_per_request"] = round(cpu["web"] / served * 1000, 3)
    result["cpu_ms_per_request"] = {
        group: round(seconds / served * 1000, 3) for group, seconds in cpu.items() if seconds
    }
    result["peak_memory_mb"] = {group: round(mb, 1) for group, mb in peak.items()}
    result["stack_peak_memory_mb"] = round(sum(peak.values()), 1)
    result["web_worker_peak_memory_mb"] = round(watch.largest("web"), 1)
    print(
        f"{name:8} {result['requests']} requests at {args.rate:.0f}/s scheduled, "
        f"{result['achieved_per_s']:.0f}/s achieved; ms p50 {result['p50_ms']} "
        f"p95 {result['p95_ms']} p99 {result['p99_ms']} max {result['max_ms']}; "
        f"errors {result['errors']} {result['errors_by_kind'] or ''}; "
        f"web CPU {result['web_cpu_ms_per_request']} ms/request"
    )
    if name != "bare":
        where = ", ".join(
            f"{g} {ms}"
            for g, ms in sorted(result["cpu_ms_per_request"].items(), key=lambda i: -i[1])
        )
        print(f"         CPU ms per request by process: {where}")
        held = sorted(peak.items(), key=lambda item: -item[1])
        memory = ", ".join(f"{group} {mb:.0f}" for group, mb in held)
        print(
            f"         peak memory (PSS) MB: {memory}; all {result['stack_peak_memory_mb']:.0f}; "
            f"largest web process {result['web_worker_peak_memory_mb']:.0f}"
        )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--port", type=int, default=int(os.environ.get("WEB_PORT") or 8000))
    parser.add_argument("--bare-port", type=int, default=8009)
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--duration", type=float, default=60)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--paths", default=",".join(PATHS), help="of " + ", ".join(PATHS))
    parser.add_argument("--pause", type=float, default=10, help="seconds between paths")
    args = parser.parse_args()
    paths = [p for p in args.paths.split(",") if p]
    if any(p not in PATHS for p in paths):
        parser.error(f"--paths: of {', '.join(PATHS)}")

    if "web" not in figures.stack_processes():
        raise SystemExit("the stack is not running: make up")
    info = figures.machine()
    figures.print_machine(info)
    key, token, remove = figures.writer_credentials()
    results: dict = {"machine": info}
    try:
        for index, name in enumerate(paths):
            if index:
                time.sleep(args.pause)  # the pipeline and the deliveries catch up
            if name == "bare":
                bare = start_bare(args.bare_port)
                try:
                    results[name] = run_path(
                        name, args, "X-Bench: bare", args.bare_port, served_by(bare.pid)
                    )
                finally:
                    bare.terminate()
                    bare.wait(10)
            else:
                header = (
                    f"X-API-Key: {key}" if name == "api-key" else f"Authorization: Bearer {token}"
                )
                results[name] = run_path(name, args, header, args.port, figures.stack_processes)
    finally:
        remove()
    if "bare" in results:
        for name in ("api-key", "jwt"):
            if name in results:
                ratio = results[name]["web_cpu_ms_per_request"] / max(
                    1e-9, results["bare"]["web_cpu_ms_per_request"]
                )
                results[f"{name}_cpu_vs_bare"] = round(ratio, 2)
                print(f"{name}: web CPU per request {ratio:.2f}x the bare DRF view's")
    figures.emit("P1", results)


if __name__ == "__main__":
    main()
