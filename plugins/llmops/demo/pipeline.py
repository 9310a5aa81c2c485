"""``make demo`` (``python -m llmops.cli demo``): the dataset DAG, then the finetune DAG, each with ``airflow dags
test``, their full output kept under ``${LLMOPS_HOME}/logs/demo`` and only progress lines echoed, then the summary
(:mod:`llmops.demo.summary`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from llmops import paths
from llmops.demo.base_models import make_base_model
from llmops.demo.summary import print_summary

PROGRESS_MARKERS = ("[llmops.", "[DAG TEST] starting", "[DAG TEST] end", "DagRun Finished", "[error", "ERROR",
                    "Traceback", "Exception:", "Error:")


def run_airflow(*argv: str, env: dict, log_file: Path | None = None) -> int:
    """Run an airflow command; with ``log_file``, keep its full output there and echo only progress lines. Every
    demo runs Airflow through this."""
    airflow = str(Path(sys.executable).with_name("airflow"))
    print(f"$ airflow {' '.join(argv)}", flush=True)
    if log_file is None:
        return subprocess.run([airflow, *argv], env={**os.environ, **env}).returncode
    log_file.parent.mkdir(parents=True, exist_ok=True)
    with open(log_file, "w") as log, subprocess.Popen([airflow, *argv], env={**os.environ, **env}, text=True,
                                                      stdout=subprocess.PIPE, stderr=subprocess.STDOUT) as proc:
        for line in proc.stdout:
            log.write(line)
            if any(m in line for m in PROGRESS_MARKERS):
                print("  " + line.rstrip()[:240], flush=True)
    return proc.returncode


def migrate(env: dict, logs: Path) -> bool:
    """``airflow db migrate``, its output under ``logs``; False (after saying where to look) when it failed."""
    if run_airflow("db", "migrate", env=env, log_file=logs / "db-migrate.log"):
        print(f"airflow db migrate failed; see {logs / 'db-migrate.log'}", file=sys.stderr)
        return False
    return True


def dags_test(dag_id: str, *conf: str, env: dict, log_file: Path) -> bool:
    """``airflow dags test`` of one DAG, its full output in ``log_file``; on failure the log's tail is printed."""
    if run_airflow("dags", "test", dag_id, *conf, env=env, log_file=log_file):
        print("\n".join(log_file.read_text().splitlines()[-40:]), file=sys.stderr)
        print(f"\n{dag_id} failed; full output in {log_file}", file=sys.stderr)
        return False
    print(f"  full output: {log_file}")
    return True


def ensure_gpu_pool(env: dict, log_file: Path | None = None) -> int:
    """The `gpu` pool finetune tasks use by default: one slot per visible GPU (one on a machine without)."""
    from llmops.train.launcher import visible_gpus

    slots = max(1, visible_gpus())
    return run_airflow("pools", "set", "gpu", str(slots), "finetune tasks: one slot per GPU", env=env,
                       log_file=log_file)


def run(use_case: str, env: dict) -> int:
    """Migrate the metadata database, make the pool and the base model, run the dataset and the finetune DAG (the
    latter pinned to the snapshot the former produced), print the summary. 0 when both runs succeeded."""
    started = time.monotonic()
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    logs = paths.llmops_home() / "logs" / "demo"
    if not migrate(env, logs):
        return 1
    ensure_gpu_pool(env, logs / "pools.log")
    make_base_model(use_case)
    dataset_started = time.time() - 1
    for kind in ("dataset", "finetune"):
        dag_id = f"{use_case}__{kind}"
        log_file = logs / f"{dag_id}.log"
        conf = []
        if kind == "finetune" and (sid := _snapshot_of_run_since(use_case, dataset_started)):
            conf = ["-c", json.dumps({"snapshot_id": sid})]  # the snapshot this dataset run produced
            print(f"  finetune pinned to snapshot {sid}, the one the dataset run produced")
        if not dags_test(dag_id, *conf, env=env, log_file=log_file):
            return 1
    print_summary(use_case)
    print(f"\ndemo pipeline took {time.monotonic() - started:.0f}s")
    return 0


def _snapshot_of_run_since(use_case: str, since: float) -> str | None:
    """The snapshot id recorded by the newest dataset run of ``use_case`` that started after ``since`` (an
    idempotent re-run that wrote nothing records the existing snapshot's id, so this is never an older one)."""
    root = paths.runs_root(use_case)
    found = sorted((p for p in root.glob("*/summary.json") if p.stat().st_mtime >= since),
                   key=lambda p: p.stat().st_mtime) if root.exists() else []
    for p in reversed(found):
        sid = (json.loads(p.read_text()).get("snapshot") or {}).get("snapshot_id")
        if sid:
            return sid
    return None


def run_judged(use_case: str, env: dict) -> int:
    """:func:`run` with the pairwise judge in the gate: the base model served by this project's API on loopback, and
    the approval a person would give answered "reject" when nobody does (:mod:`llmops.demo.judge`)."""
    from llmops.config import load_by_name
    from llmops.demo import judge
    from llmops.demo.base_server import serve_base

    env["LLMOPS_USE_CASES_DIR"] = str(judge.judged_use_cases_dir(use_case))
    os.environ["LLMOPS_USE_CASES_DIR"] = env["LLMOPS_USE_CASES_DIR"]
    make_base_model(use_case)
    started = time.monotonic()
    with serve_base(load_by_name(use_case)) as server:
        print(f"judge: the base model served by this project's API at {server.base_url} (model {server.model}) "
              f"[{time.monotonic() - started:.0f}s to start]; the `approve` task waits {judge.APPROVAL_WAIT_S}s "
              "for a person (Airflow UI, Required Actions) when the judge is not trusted")
        env.update(server.env())
        stop = threading.Event()
        judge.reject_when_unanswered(f"{use_case}__finetune", env, stop)
        rc = run(use_case, env)
        stop.set()
    if rc == 0:
        judge.print_judge_summary(use_case)
    return rc
