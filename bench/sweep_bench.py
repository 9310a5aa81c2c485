"""Wall time of a 3-trial sweep (one finetune DAG run, base and champion scored once) against three separate
finetune DAG runs with the same three settings, through the real `airflow dags test` on the tiny model.

Both sides run in the same invocation, on the same snapshot and the same use case otherwise; each side starts from
the same registry state (the sweep's use case and the single runs' use case register under different names, each
side starting without a champion). Prints one JSON line per measurement and appends a section to
docs/benchmarks.md.

    PYTHONPATH=plugins .venv/bin/python bench/sweep_bench.py               # 1 repeat, writes docs/benchmarks.md
    PYTHONPATH=plugins .venv/bin/python bench/sweep_bench.py --repeats 3 --no-write
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
SAMPLE = ROOT / "include" / "data" / "stackoverflow_qa" / "questions.jsonl"
TRIALS = [{"lora_r": 4}, {"lora_r": 8}, {"lora_r": 8, "learning_rate": 1e-3}]
PARAMS = [{"lora_rank": 4}, {"lora_rank": 8}, {"lora_rank": 8, "learning_rate": 1e-3}]  # the same, as Params


def use_case(folder: Path, name: str, base_model: str, data: Path, sweep: bool) -> None:
    cfg = yaml.safe_load((ROOT / "include" / "use_cases" / "stackoverflow_qa.yaml").read_text())
    cfg.update(name=name, base_model=base_model, source={**cfg["source"], "path": str(data)}, retries=0)
    cfg["training"].update(epochs=1, batch_size=16, max_seq_len=96)
    cfg["evaluation"].update(max_eval_rows=48, generation_samples=8, max_new_tokens=24, batch_size=16)
    cfg["gate"] = {"rules": [{"metric": "eval_loss", "vs": "champion", "ci": True}], "promote_to_champion": False}
    if sweep:
        cfg["training"]["sweep"] = {"trials": TRIALS, "max_trials": 3}
    (folder / f"{name}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))


def timed(env: dict, *argv: str) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run([AIRFLOW, *argv], env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    return seconds


def one_repeat(base: Path, repeat: int) -> dict:
    import pandas as pd

    from llmops.demo.tiny_model import make_tiny_model
    from llmops.embedded import embedded_env

    sys.path.insert(0, str(ROOT / "plugins"))
    work = base / f"r{repeat}"
    (work / "use_cases").mkdir(parents=True)
    rows = pd.read_json(SAMPLE, lines=True)
    data = work / "qa.jsonl"
    rows.head(400).to_json(data, orient="records", lines=True, date_format="iso")
    texts = rows["question"].tolist() + rows["answer"].tolist()
    tiny = make_tiny_model(work / "tiny", texts, vocab_size=600, pretrain_steps=120)
    use_case(work / "use_cases", "bench_sweep", str(tiny), data, sweep=True)
    use_case(work / "use_cases", "bench_single", str(tiny), data, sweep=False)
    env = embedded_env({"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(work))})
    env.update(LLMOPS_HOME=str(work / "home"), LLMOPS_USE_CASES_DIR=str(work / "use_cases"),
               LLMOPS_DATA_ROOTS=str(work), AIRFLOW_HOME=str(work / "airflow"),
               MLFLOW_TRACKING_URI=f"sqlite:///{work / 'home' / 'mlflow.db'}")
    timed(env, "db", "migrate")
    for name in ("bench_sweep", "bench_single"):
        timed(env, "dags", "test", f"{name}__dataset")
    sweep = timed(env, "dags", "test", "bench_sweep__finetune")
    singles = [timed(env, "dags", "test", "bench_single__finetune", "-c", json.dumps(p)) for p in PARAMS]
    out = {"repeat": repeat, "sweep_s": round(sweep, 1), "three_runs_s": round(sum(singles), 1),
           "single_runs_s": [round(s, 1) for s in singles], "tasks": task_seconds(work / "airflow" / "airflow.db")}
    print(json.dumps(out), flush=True)
    return out


def task_seconds(db: Path) -> dict:
    """Seconds per task (mapped indices and the three single runs summed), from Airflow's metadata DB."""
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT dag_id, task_id, SUM(duration), COUNT(*) FROM task_instance WHERE dag_id LIKE "
                           "'%__finetune' GROUP BY dag_id, task_id").fetchall()
    return {f"{'sweep' if 'sweep' in d else 'three_runs'}.{t}": [round(s or 0, 1), n] for d, t, s, n in rows}


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="sweep-bench-") as tmp:
        results = [one_repeat(Path(tmp), i) for i in range(args.repeats)]
    sweep = statistics.median(r["sweep_s"] for r in results)
    three = statistics.median(r["three_runs_s"] for r in results)
    summary = {"sweep_s": sweep, "three_runs_s": three, "ratio": round(sweep / three, 3), "repeats": args.repeats}
    print(json.dumps(summary))
    if args.no_write:
        return
    machine = f"{cpu_name()}, {os.cpu_count()} cores visible, CPU only (no GPU)"
    singles = ", ".join(f"{s:.0f}" for s in results[-1]["single_runs_s"])
    tasks = results[-1]["tasks"]

    def cell(key):
        s, n = tasks.get(key, [0, 0])
        return f"{s:.0f} s ({n})" if n else "-"

    rows = "\n".join(f"| {t} | {cell('sweep.' + t)} | {cell('three_runs.' + t)} |"
                     for t in ("plan", "reference", "finetune", "evaluate", "gate", "register"))
    section = f"""
## Sweep: 3 trials in one DAG run vs 3 separate DAG runs (tiny model)

- Command: `PYTHONPATH=plugins .venv/bin/python bench/sweep_bench.py --repeats {args.repeats}`
- Date: {datetime.now(UTC):%Y-%m-%d}; machine: {machine}; median of {args.repeats} repeat(s), each a fresh Airflow
  (LocalExecutor, SQLite) and MLflow (SQLite), `airflow dags test` per DAG run, the tiny local model, 400 rows,
  1 epoch, 48 eval rows; trials `r=4`, `r=8`, `lr=0.001,r=8` (the same three as Params for the single runs)

| run | wall time |
| --- | --- |
| one sweep DAG run, 3 trials (base model scored once) | {sweep:.0f} s |
| three finetune DAG runs (base model scored three times; {singles} s) | {three:.0f} s |
| ratio sweep / three runs | {sweep / three:.2f} |

Task time in the last repeat (summed over mapped indices and over the three runs; task instances in brackets),
from Airflow's metadata DB:

| task | sweep | three runs |
| --- | --- | --- |
{rows}

The sweep scores the base model once (`reference`); each separate run scores it again inside its `evaluate`, and
the second and third also score the champion the first one registered (as separate runs on a live use case
would). With the tiny model that scoring is a few seconds, and a trial's `evaluate` (its own task process, base
model and adapter loaded again) costs about what a single run's three-candidate `evaluate` does, so the shared
reference shows only as the missing base/champion work, not as a large saving; most of the difference is the
per-DAG-run overhead of `airflow dags test` (parsing, scheduling, task start-up) and run-to-run variation in
training time on a shared machine. With a real model the reference saves N-1 base and N-1 champion evaluations,
which grow with model size and eval rows. The sweep registers one version instead of up to three. Trials ran one
at a time (`max_parallel: 1`): on 2 CPU cores parallel trials would only share them.
"""
    with open(ROOT / "docs" / "benchmarks.md", "a", encoding="utf-8") as f:
        f.write(section)


if __name__ == "__main__":
    main()
