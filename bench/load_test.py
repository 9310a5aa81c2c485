"""Load test of the serving API with locust (headless) at 1, 8 and 32 concurrent users, loopback only.

Needs a registered champion (run `make demo`, or `make demo-real` for the real model, first). Starts
`python -m llmops.serving` on a free 127.0.0.1 port, runs locust from its own virtual environment
(.llmops/bench-venv; locust's pins differ from Airflow's) for a bounded time per level, asking the use case's own
questions, and appends throughput and p50/p95/p99 latency to docs/benchmarks.md.

    .venv/bin/python bench/load_test.py [--seconds 20] [--users 1 8 32]
    .venv/bin/python bench/load_test.py --use-case python_docs_qa --seconds 60 --max-new-tokens 32
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".llmops" / "bench-venv"


def cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()} ({os.cpu_count()} cores)"
    return f"{platform.processor()} ({os.cpu_count()} cores)"


def locust_bin() -> Path:
    exe = VENV / "bin" / "locust"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
        subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", "locust==2.47.0"], check=True)
    return exe


def wait_healthy(url: str, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            req = urllib.request.Request(f"{url}/healthz",
                                         headers={"Authorization": f"Bearer {os.environ['LLMOPS_API_KEY']}"})
            with urllib.request.urlopen(req, timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(1)
    raise TimeoutError(f"{url} did not become healthy in {timeout}s")


def questions_file(use_case: str, out: Path) -> Path:
    """The use case's own questions (its source's prompt column), one JSON line each, for the locust users."""
    import glob

    from llmops.config import load_by_name

    cfg = load_by_name(use_case)
    files = sorted(glob.glob(str(ROOT / cfg.source.path)))
    if not files:
        sys.exit(f"{use_case}: no local source files match {cfg.source.path}")
    with open(files[0]) as f:
        questions = [json.loads(line)[cfg.source.prompt_column] for line in f if line.strip()]
    path = out / f"questions-{use_case}.jsonl"
    path.write_text("".join(json.dumps({"question": q}) + "\n" for q in questions[:500]))
    return path


def bodies_file(bodies: list[dict], path: Path) -> Path:
    """Request bodies for the locust users (sent as is to ``LLMOPS_LOAD_ROUTE``), one JSON line each."""
    path.write_text("".join(json.dumps({"body": b}) + "\n" for b in bodies))
    return path


def run_level(exe: Path, url: str, users: int, seconds: int, out: Path, env: dict | None = None) -> dict:
    """One locust level: ``users`` users (all spawned at once) for ``seconds``; ``env`` over this process's
    (``LLMOPS_LOAD_QUESTIONS``, ``LLMOPS_LOAD_ROUTE``, ``LLMOPS_API_KEY``)."""
    prefix = out / f"u{users}"
    subprocess.run([str(exe), "-f", str(ROOT / "bench" / "locustfile.py"), "--headless", "-u", str(users),
                    "-r", str(users), "-t", f"{seconds}s", "--host", url, "--csv", str(prefix), "--only-summary",
                    "--stop-timeout", "30"], check=False, cwd=ROOT, timeout=seconds + 180,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ, **(env or {})})
    with open(f"{prefix}_stats.csv") as f:
        row = next(r for r in csv.DictReader(f) if r["Name"] == "Aggregated")
    return {"users": users, "requests": int(row["Request Count"]), "failures": int(row["Failure Count"]),
            "rps": _number(row["Requests/s"]), "p50_ms": _number(row["50%"]), "p95_ms": _number(row["95%"]),
            "p99_ms": _number(row["99%"])}


def _number(cell: str) -> float:
    """A locust CSV cell: "N/A" (a level that finished no request has no percentiles) is NaN, not a crash."""
    return float("nan") if cell.strip() in ("", "N/A") else float(cell)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=20)
    parser.add_argument("--users", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--use-case", default="stackoverflow_qa")
    parser.add_argument("--max-new-tokens", type=int, default=16)
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "plugins"))
    from llmops.config import load_by_name
    from llmops.ports import free_port

    cfg = load_by_name(args.use_case)
    exe = locust_bin()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    out = ROOT / ".llmops" / "bench" / "load"
    out.mkdir(parents=True, exist_ok=True)
    key = "sk-bench-" + secrets.token_urlsafe(16)  # the server's only key; locust sends it (LLMOPS_API_KEY)
    os.environ["LLMOPS_API_KEY"] = key
    os.environ["LLMOPS_LOAD_QUESTIONS"] = str(questions_file(args.use_case, out))
    os.environ["LLMOPS_LOAD_MAX_NEW_TOKENS"] = str(args.max_new_tokens)
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins"), "LLMOPS_API_KEYS": key}
    server = subprocess.Popen([sys.executable, "-m", "llmops.serving", "--use-case", args.use_case, "--port",
                               str(port)], env=env, cwd=ROOT, stdout=open(out / "server.log", "w"),
                              stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_healthy(url)
        results = [run_level(exe, url, u, args.seconds, out) for u in args.users]
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
    for r in results:
        print(json.dumps({"bench": "serving_load", "use_case": args.use_case, **r}))
    base = results[0]["rps"] if results and results[0]["users"] == 1 else None
    s = cfg.serving
    lines = [f"\n## Serving API load test: {args.use_case} ({datetime.now(UTC):%Y-%m-%d})\n",
             f"Machine: {cpu_name()}, CPU only; model `{cfg.base_model}` with its registered champion adapter "
             f"merged; max_new_tokens {args.max_new_tokens}; batching: max_batch_size {s.max_batch_size}, "
             f"max_wait_ms {s.max_wait_ms:g}, max_queue {s.max_queue}; locust {args.seconds}s per level on "
             f"loopback. Reproduce: `.venv/bin/python bench/load_test.py --use-case {args.use_case} --seconds "
             f"{args.seconds} --max-new-tokens {args.max_new_tokens}`.\n",
             "| users | requests | failures | req/s | p50 ms | p95 ms | p99 ms |", "|---|---|---|---|---|---|---|"]
    lines[-2:] = ["| users | requests | failures | req/s | vs 1 user | p50 ms | p95 ms | p99 ms |",
                  "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['users']} | {r['requests']} | {r['failures']} | {r['rps']:.2f} | "
              f"{r['rps'] / base if base else float('nan'):.1f}x | {r['p50_ms']:.0f} | {r['p95_ms']:.0f} | "
              f"{r['p99_ms']:.0f} |" for r in results]
    doc = ROOT / "docs" / "benchmarks.md"
    doc.parent.mkdir(exist_ok=True)
    with open(doc, "a") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
