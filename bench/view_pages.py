"""Benchmark: page load times of the LLMOps view with many versions and runs.

    PYTHONPATH=plugins .venv/bin/python bench/view_pages.py [--versions 100] [--runs 1000] [--snapshots 20]
        [--steps 500] [--repeats 5]

Builds a throwaway LLMOps home (tmp folder): a use case like the sample one, ``--snapshots`` dataset snapshots
(real manifests through the snapshot store), ``--runs`` finetune DAG run folders (summary, evaluation results with
256 per-example scores, the gate's decision.json), ``--versions`` of them registered in a SQLite MLflow registry
(champion and challenger aliases, metric tags, gate tags) with ``--steps`` points of training loss each. Then
times each page of the view through its FastAPI app in process (the Airflow login replaced by a no-op: the cost
measured is the view's own reading and rendering): the first request (cold caches) and the median of
``--repeats`` more. Prints one JSON line per page and a markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))

USE_CASE = "bench_qa"


def build(home: Path, args) -> list[str]:
    """The use case, its snapshots, runs and versions; returns the DAG run ids that registered a version."""
    import pandas as pd
    import yaml
    from mlflow.tracking import MlflowClient

    from llmops.config import SplitConfig, load_by_name
    from llmops.data.snapshots.handle import Snapshots
    from llmops.data.snapshots.store import store_for
    from llmops.runs import record_step

    use_cases = home / "use_cases"
    use_cases.mkdir(parents=True)
    cfg = yaml.safe_load((ROOT / "include" / "use_cases" / "stackoverflow_qa.yaml").read_text())
    cfg["name"] = USE_CASE
    (use_cases / f"{USE_CASE}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    os.environ["LLMOPS_USE_CASES_DIR"] = str(use_cases)
    uc = load_by_name(USE_CASE)
    rng = random.Random(0)

    sample = pd.read_json(ROOT / "include" / "data" / "stackoverflow_qa" / "questions.jsonl", lines=True)
    sample = sample.rename(columns={"question": "prompt", "answer": "response"})
    snaps = Snapshots(store_for(uc), split=SplitConfig(eval_fraction=0.1))
    snapshot_ids = []
    for i in range(args.snapshots):
        rows = sample.sample(n=60 + i, random_state=i).assign(source_file="qa.jsonl", source_line=range(60 + i))
        m = snaps.write_frame(rows, source={"kind": "files", "files": ["/data/qa.jsonl"]},
                              validation={"success": i % 7 != 3, "suite": "qa_pairs", "successful": 8, "evaluated": 8})
        snapshot_ids.append(m["snapshot_id"])

    c = MlflowClient()
    model = f"{USE_CASE}-lora"
    c.create_registered_model(model)
    exp = c.create_experiment(USE_CASE)
    registered = []
    for i in range(args.runs):
        run_id = f"manual__2026-01-01T00:00:{i:04d}"
        run_dir = home / "runs" / USE_CASE / run_id.replace(":", "_")
        (run_dir / "eval" / "report").mkdir(parents=True)
        f1 = 0.2 + 0.001 * i + rng.gauss(0, 0.01)
        per_example = {"token_f1": [max(0.0, rng.gauss(f1, 0.1)) for _ in range(256)],
                       "eval_loss": [rng.gauss(2.0 - 0.0005 * i, 0.3) for _ in range(256)]}
        (run_dir / "eval" / "results.json").write_text(json.dumps({"candidates": {"challenger": {
            "metrics": {"token_f1": f1}, "per_example": per_example}}}))
        rules = [{"metric": "eval_loss", "vs": "champion", "reference": "champion", "improvement": 0.01,
                  "ci_low": -0.02, "ci_high": 0.04, "margin": -0.02, "passed": True, "reason": "eval_loss vs champion"},
                 {"metric": "token_f1", "vs": None, "min": 0.2, "max": None, "value": f1, "passed": f1 >= 0.2,
                  "reason": "token_f1"}]
        decision = {"passed": f1 >= 0.2, "reference": "champion", "rules": rules, "reasons": ["a", "b"], "text": "t"}
        (run_dir / "eval" / "report" / "decision.json").write_text(json.dumps(decision))
        evaluate = {"metrics": {c_: {"token_f1": f1, "regression.arith.acc": 0.5, "regression.arith.acc_stderr": 0.04}
                                for c_ in ("base", "champion", "challenger")}}
        summary = {"use_case": USE_CASE, "dag_run_id": run_id, "evaluate": evaluate,
                   "gate": {"passed": decision["passed"], "rules": rules,
                            "report": str(run_dir / "eval" / "report" / "report.md")}}
        if i % (args.runs // args.versions) == 0 and len(registered) < args.versions:
            mlflow_run = c.create_run(exp).info.run_id
            c.log_batch(mlflow_run, metrics=[_metric("train_loss", 3.0 / (1 + s / 50), s)
                                             for s in range(args.steps)])
            c.set_tag(mlflow_run, "gate.decision", "PASSED")
            c.set_tag(mlflow_run, "gate.reasons", json.dumps(["a", "b"]))
            tags = {"dag_run_id": run_id, "snapshot_id": snapshot_ids[i % len(snapshot_ids)], "base_model": "tiny",
                    "metric.token_f1": f"{f1:.6g}", "metric.eval_loss": f"{2.0 - 0.0005 * i:.6g}"}
            mv = c.create_model_version(model, source=f"runs:/{mlflow_run}/adapter", run_id=mlflow_run, tags=tags)
            summary["finetune"] = {"mlflow_run_id": mlflow_run}
            summary["register"] = {"registered": True, "version": str(mv.version)}
            registered.append(run_id)
        (run_dir / "summary.json").write_text(json.dumps(summary))
        if i < args.snapshots:
            record_step(USE_CASE, f"scheduled__{i}", "snapshot", {"snapshot_id": snapshot_ids[i]})
    c.set_registered_model_alias(model, "champion", str(len(registered) - 1))
    c.set_registered_model_alias(model, "challenger", str(len(registered)))
    return registered


def _metric(key, value, step):
    from mlflow.entities import Metric

    return Metric(key, value, int(time.time() * 1000), step)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--versions", type=int, default=100)
    ap.add_argument("--runs", type=int, default=1000)
    ap.add_argument("--snapshots", type=int, default=20)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()

    home = Path(tempfile.mkdtemp(prefix="llmops-view-bench-"))
    os.environ.update(LLMOPS_HOME=str(home), MLFLOW_TRACKING_URI=f"sqlite:///{home / 'mlflow.db'}")
    t0 = time.perf_counter()
    registered = build(home, args)
    built = time.perf_counter() - t0

    from fastapi.testclient import TestClient

    from llmops.view import app as view_app

    view_app._authenticated = lambda: (lambda: None)  # the cost of the view itself, not of the login check
    client = TestClient(view_app.create_app())
    newest = registered[-1].replace(":", "%3A")
    pages = {"use case (versions over time, snapshots, tables)": f"/use-cases/{USE_CASE}",
             "version (lineage chain)": f"/use-cases/{USE_CASE}/versions/{len(registered)}",
             "gate decision (forest plot, regression suite)": f"/use-cases/{USE_CASE}/runs/{newest}/gate",
             f"training ({args.steps} loss points)": f"/use-cases/{USE_CASE}/runs/{newest}/training",
             "index": "/use-cases/"}
    rows = []
    for label, path in pages.items():
        t = time.perf_counter()
        r = client.get(path)
        first = time.perf_counter() - t
        assert r.status_code == 200, (path, r.status_code, r.text[:500])
        times = []
        for _ in range(args.repeats):
            t = time.perf_counter()
            client.get(path)
            times.append(time.perf_counter() - t)
        row = {"page": label, "path": path, "first_ms": round(first * 1000), "median_ms":
               round(statistics.median(times) * 1000), "bytes": len(r.content)}
        rows.append(row)
        print(json.dumps(row))
    print(f"\n{args.versions} versions, {args.runs} runs, {args.snapshots} snapshots; built in {built:.0f} s "
          f"(python {sys.version.split()[0]}, {os.cpu_count()} CPUs)\n")
    print(f"| page | first request (ms) | median of next {args.repeats} (ms) | HTML (KiB) |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['page']} | {r['first_ms']} | {r['median_ms']} | {r['bytes'] / 1024:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
