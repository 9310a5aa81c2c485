"""Dataset pipeline throughput: ingest + prepare + validate + snapshot vs a raw pyarrow read + write of the same
JSONL file, for 1M and 4M Stack-Overflow-sized rows. Each measurement runs in a child process (peak RSS is the
child's ru_maxrss). Prints one JSON line per measurement and appends a section to docs/benchmarks.md.

    PYTHONPATH=plugins .venv/bin/python bench/data_pipeline.py            # 1M and 4M rows
    PYTHONPATH=plugins .venv/bin/python bench/data_pipeline.py --rows 200000 --repeats 1 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORDS = ("python list dict pandas sort file read write loop index error value key string format async thread "
         "class method return import module package install version json parse date time regex match").split()


def generate(path: Path, n: int, seed: int = 0) -> None:
    """Question ~80 chars, answer ~400 chars of HTML, like a Stack Overflow extract; unique questions."""
    rnd = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(n):
            q = f"How do I {' '.join(rnd.choices(WORDS, k=8))} (case {i})?"
            a = "<p>" + " ".join(rnd.choices(WORDS, k=60)) + "</p><pre><code>x = 1</code></pre>"
            ts = f"2026-01-{5 + i % 20:02d}T{i % 24:02d}:00:00Z"
            f.write(json.dumps({"question": q, "answer": a, "created_at": ts, "question_id": i}) + "\n")


def run_raw(src: Path, out: Path) -> dict:
    import pyarrow.json as pj
    import pyarrow.parquet as pq

    table = pj.read_json(src)
    pq.write_table(table, out / "raw.parquet")
    return {"rows": table.num_rows}


def run_pipeline(src: Path, out: Path) -> dict:
    os.environ["LLMOPS_HOME"] = str(out / "home")
    os.environ["LLMOPS_DATA_ROOTS"] = str(src.parent)
    from llmops import paths
    from llmops.config import PrepareConfig, SourceConfig
    from llmops.data.snapshots.handle import Snapshots
    from llmops.data.snapshots.store import LocalStore
    from llmops.data.stage import stage
    from llmops.data.validate import validate_file

    # the dataset DAG's three tasks in a row: stage (ingest + prepare), validate, snapshot
    source = SourceConfig(path=str(src), prompt_column="question", response_column="answer",
                          timestamp_column="created_at")
    staged = out / "ingested.parquet"
    result = stage(source, PrepareConfig(strip_html=True), staged)
    summary = validate_file(staged, ROOT / "include" / "expectations" / "qa_pairs.json")
    snapshots = Snapshots(LocalStore(paths.snapshots_root("bench"), "bench"))
    m = snapshots.write_file(staged, source=result["source"], validation=summary, steps=result["steps"])
    return {"rows": m["rows"]["input"]}


def child(kind: str, src: str) -> None:
    with tempfile.TemporaryDirectory(dir=Path(src).parent) as tmp:
        t0 = time.perf_counter()
        res = (run_raw if kind == "raw" else run_pipeline)(Path(src), Path(tmp))
        seconds = time.perf_counter() - t0
    rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({**res, "seconds": seconds, "peak_rss_mib": rss_mib}))


def measure(kind: str, src: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "plugins")}
    out = subprocess.run([sys.executable, __file__, "--child", kind, str(src)], env=env, capture_output=True,
                         text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--child", nargs=2, metavar=("KIND", "SRC"))
    ap.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 4_000_000])
    ap.add_argument("--repeats", type=int, default=3, help="timed runs per size after one warm-up run")
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    if args.child:
        return child(*args.child)
    results = []
    with tempfile.TemporaryDirectory(prefix="llmops-bench-") as tmp:
        for n in args.rows:
            src = Path(tmp) / f"qa_{n}.jsonl"
            generate(src, n)
            runs = {"raw": [], "pipeline": []}
            for i in range(args.repeats + 1):  # the first round is the warm-up
                for kind in ("raw", "pipeline"):
                    r = measure(kind, src)
                    if i:
                        runs[kind].append(r)
            row = {"rows": n, "file_mib": round(src.stat().st_size / 2**20, 1)}
            for kind, rs in runs.items():
                secs = statistics.median(r["seconds"] for r in rs)
                row[f"{kind}_seconds"] = round(secs, 2)
                row[f"{kind}_rows_per_s"] = round(n / secs)
                row[f"{kind}_peak_rss_mib"] = round(max(r["peak_rss_mib"] for r in rs))
            row["ratio"] = round(row["pipeline_rows_per_s"] / row["raw_rows_per_s"], 3)
            print(json.dumps(row), flush=True)
            results.append(row)
            src.unlink()
    if len(results) >= 2:
        growth = results[-1]["pipeline_peak_rss_mib"] / results[0]["pipeline_peak_rss_mib"]
        print(json.dumps({"rss_growth": round(growth, 2)}))
    if not args.no_write:
        write_markdown(results, args)


def write_markdown(results: list[dict], args) -> None:
    lines = [
        "", f"## Dataset pipeline throughput ({datetime.now(UTC).date()})", "",
        f"Command: `PYTHONPATH=plugins .venv/bin/python bench/data_pipeline.py --rows {' '.join(map(str, args.rows))}"
        f" --repeats {args.repeats}`  ",
        f"Machine: {cpu_model()} (CPU shared with other work while measuring).  ",
        "Pipeline = the dataset DAG's three tasks in a row, each streaming in batches: stage (ingest JSONL + "
        "prepare: HTML strip, whitespace, length limits, dedup), validate (GX suite qa_pairs), snapshot (split, leakage check, "
        "content hash, Parquet + JSONL). Baseline = pyarrow.json.read_json + "
        f"pyarrow.parquet.write_table of the same file, in the same invocation. Medians of {args.repeats} runs after "
        "one warm-up; each run in a child process, peak RSS = its ru_maxrss.", "",
        "| rows | file MiB | baseline rows/s | pipeline rows/s | ratio (target >= 0.5) | baseline peak RSS MiB "
        "| pipeline peak RSS MiB |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        lines.append(f"| {r['rows']:,} | {r['file_mib']} | {r['raw_rows_per_s']:,} | {r['pipeline_rows_per_s']:,} | "
                     f"{r['ratio']} | {r['raw_peak_rss_mib']:,} | {r['pipeline_peak_rss_mib']:,} |")
    if len(results) >= 2:
        growth = results[-1]["pipeline_peak_rss_mib"] / results[0]["pipeline_peak_rss_mib"]
        lines += ["", f"Pipeline peak RSS grows {growth:.2f}x from {results[0]['rows']:,} to {results[-1]['rows']:,} "
                  "rows (target <= 1.3x; every task streams in batches of LLMOPS_BATCH_ROWS rows)."]
    out = ROOT / "docs" / "benchmarks.md"
    out.parent.mkdir(exist_ok=True)
    if not out.exists():
        out.write_text("# Benchmarks\n")
    with open(out, "a") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
