"""`airflow backfill create` over four weekly partitions, run by a real scheduler (LocalExecutor + SQLite):
three partitions with rows give three snapshots, the empty one finishes with skipped tasks, and re-running a
partition gives the same snapshot id and writes nothing new."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from llmops.embedded import embedded_env
from tests import airflow_db
from tests.data.emulators import free_port

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))
UC = "bf_qa"
WEEKS = ["2026-01-05T00:00:00", "2026-01-12T00:00:00", "2026-01-19T00:00:00", "2026-01-26T00:00:00"]


@pytest.fixture
def env(tmp_path, sample_rows) -> dict:
    use_cases, data = tmp_path / "use_cases", tmp_path / "data"
    use_cases.mkdir()
    data.mkdir()
    rows = sample_rows.copy()
    ts = pd.to_datetime(rows["created_at"], utc=True)
    keep = (ts < pd.Timestamp("2026-02-02", tz="UTC")) & ~ts.between(
        pd.Timestamp("2026-01-19", tz="UTC"), pd.Timestamp("2026-01-26", tz="UTC"), inclusive="left")
    rows[keep].rename(columns={"prompt": "question", "response": "answer"}).to_json(
        data / "qa.jsonl", orient="records", lines=True, date_format="iso")
    cfg = yaml.safe_load((ROOT / "include" / "use_cases" / "stackoverflow_qa.yaml").read_text())
    cfg.update(name=UC, schedule="0 0 * * 1", base_model="unused-here")
    cfg["source"]["path"] = str(data / "qa.jsonl")
    cfg["expectation_suite"] = str(ROOT / "include" / "expectations" / "qa_pairs.json")
    (use_cases / f"{UC}.yaml").write_text(yaml.safe_dump(cfg))
    port = free_port()
    e = embedded_env({"PATH": os.environ["PATH"], "HOME": os.environ.get("HOME", str(tmp_path))})
    e.update({
        "LLMOPS_HOME": str(tmp_path / "home"), "LLMOPS_USE_CASES_DIR": str(use_cases),
        "LLMOPS_DATA_ROOTS": str(data), "AIRFLOW_HOME": str(tmp_path / "airflow"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "AIRFLOW__API__PORT": str(port), "AIRFLOW__API__HOST": "127.0.0.1",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{port}/execution/",
        "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "True", "AIRFLOW__CORE__PARALLELISM": "2",
        "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5", "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "1",
    })
    assert subprocess.run([AIRFLOW, "db", "migrate"], env=e, capture_output=True, timeout=300).returncode == 0
    return e


def _snapshots(env) -> list[dict]:
    return [json.loads(p.read_text()) for p in (Path(env["LLMOPS_HOME"]) / "snapshots" / UC).glob("*/manifest.json")]


def _runs(env) -> list[dict]:
    return airflow_db.dag_runs(env, f"{UC}__dataset")  # sqlite3, not `airflow dags list-runs` (5 s of CPU a look)


def test_backfill_makes_one_snapshot_per_partition_and_skips_the_empty_one(env, tmp_path):
    logs, procs = tmp_path / "logs", []
    logs.mkdir()
    try:
        for name in ("api-server", "dag-processor", "scheduler"):
            with open(logs / f"{name}.log", "w") as out:
                procs.append(subprocess.Popen([AIRFLOW, name], env=env, stdout=out, stderr=subprocess.STDOUT,
                                              start_new_session=True))
        deadline = time.monotonic() + 120
        # the dag-processor must have serialized the DAG before a backfill can name it
        while not airflow_db.serialized(env, f"{UC}__dataset") and time.monotonic() < deadline:
            time.sleep(1)
        created = subprocess.run([AIRFLOW, "backfill", "create", "--dag-id", f"{UC}__dataset", "--from-date",
                                  "2026-01-05", "--to-date", "2026-01-26"], env=env, capture_output=True,
                                 text=True, timeout=120)
        assert created.returncode == 0, created.stdout[-2000:] + created.stderr[-2000:]
        # the scheduler leaves a paused DAG's backfill runs queued; finetune stays paused (no training here)
        unpaused = subprocess.run([AIRFLOW, "dags", "unpause", f"{UC}__dataset"], env=env, capture_output=True,
                                  text=True, timeout=120)
        assert unpaused.returncode == 0, unpaused.stderr[-2000:]
        deadline = time.monotonic() + 420
        while time.monotonic() < deadline:
            # unpausing may also start the current tick's scheduled run (no rows there): count the backfill's
            runs = [r for r in _runs(env) if r["run_id"].startswith("backfill__")]
            if len(runs) == 4 and all(r["state"] in ("success", "failed") for r in runs):
                break
            time.sleep(2)
        tail = "".join((logs / f).read_text()[-1500:] for f in ("scheduler.log",))
        assert len(runs) == 4, (runs, tail)
        assert all(r["state"] == "success" for r in runs), (runs, tail)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()

    snaps = {m["partition_key"]: m for m in _snapshots(env)}
    assert sorted(snaps) == [WEEKS[0], WEEKS[1], WEEKS[3]]  # the week without rows made none
    for key, m in snaps.items():
        assert m["interval"]["start"].startswith(key[:10]) and m["rows"]["input"] > 50
        assert [s["step"] for s in m["steps"]][:1] == ["ingest"]
    first = snaps[WEEKS[0]]
    manifest = Path(first["uri"].removeprefix("file://")) / "manifest.json"
    before = manifest.stat().st_mtime_ns
    again = subprocess.run([AIRFLOW, "dags", "test", f"{UC}__dataset", "-c",
                            json.dumps({"partition_key": WEEKS[0]})], env=env, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stdout[-3000:]
    assert "already exists" in again.stdout + again.stderr
    assert len(_snapshots(env)) == 3 and manifest.stat().st_mtime_ns == before
