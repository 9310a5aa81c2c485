"""Promotion end to end with a person in the loop: the gate compares with the re-evaluated champion, then the
approval task waits (Airflow HITL) and the answer is given through Airflow's REST API, as the UI does."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from tests import airflow_db

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


pytestmark = pytest.mark.slow

# Answers the approval task through the public REST API (the route the UI's Required Actions page uses),
# in-process against the same metadata DB; SIMPLE_AUTH_MANAGER_ALL_ADMINS lets it in without a login.
RESPOND = textwrap.dedent("""
    import sys
    from fastapi.testclient import TestClient
    from airflow.api_fastapi.app import create_app
    dag_id, run_id, choice = sys.argv[1:4]
    with TestClient(create_app("core")) as client:
        r = client.patch(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails",
                         json={"chosen_options": [choice], "params_input": {}})
        print(r.status_code, r.text)
        sys.exit(0 if r.status_code == 200 else 1)
""")


def _run_with_answer(airflow, dag_id: str, choice: str) -> str:
    env = {**airflow.env, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True"}
    log = airflow.home.parent / f"{dag_id}-{choice}.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([AIRFLOW, "dags", "test", dag_id], env=env, stdout=f, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 400
    run_id = ""
    while not run_id and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(1)  # a look at the metadata DB with sqlite3, not an Airflow process (4 s of CPU each)
        run_id = airflow_db.awaiting_input(env, dag_id)
    if not run_id:
        proc.kill()
        pytest.fail("the approval task never waited for input:\n" + log.read_text()[-4000:])
    answer = subprocess.run([sys.executable, "-c", RESPOND, dag_id, run_id, choice], env=env, capture_output=True,
                            text=True)
    assert answer.returncode == 0, answer.stdout[-2000:] + answer.stderr[-3000:]
    proc.wait(timeout=300)
    out = log.read_text()
    assert proc.returncode == 0, out[-4000:]
    return out


def test_approved_then_rejected_promotion(airflow):
    use_cases = airflow.env["LLMOPS_USE_CASES_DIR"]
    cfg = yaml.safe_load((Path(use_cases) / "e2e_qa.yaml").read_text())  # the small e2e use case
    cfg.update(name="e2e_hitl", gate={"rules": [{"metric": "eval_loss_improvement", "min": 0.01},
                                                {"metric": "eval_loss", "vs": "champion", "margin": -1.0, "ci": True}],
                                      "promote_to_champion": True, "require_approval": True})
    cfg["source"]["allowed_roots"] = [str(Path(cfg["source"]["path"]).parent)]
    (Path(use_cases) / "e2e_hitl.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    assert airflow.dags_test("e2e_hitl__dataset").returncode == 0
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=airflow.env["MLFLOW_TRACKING_URI"])

    out = _run_with_answer(airflow, "e2e_hitl__finetune", "Approve")
    assert "Waiting for Human-in-the-loop input" in out and "gate PASSED" in out
    versions = client.search_model_versions("name = 'e2e_hitl-lora'")
    assert [v.version for v in versions] == [1]
    assert client.get_model_version_by_alias("e2e_hitl-lora", "champion").version == 1
    report = client.get_run(versions[0].run_id).data.tags["eval.report"]
    assert report.endswith("eval/report/report.md")

    out = _run_with_answer(airflow, "e2e_hitl__finetune", "Reject")
    assert "vs champion" in out, "the second run must compare with the re-evaluated champion"
    assert [v.version for v in client.search_model_versions("name = 'e2e_hitl-lora'")] == [1]
    assert client.get_model_version_by_alias("e2e_hitl-lora", "champion").version == 1
    summaries = sorted((airflow.home / "runs" / "e2e_hitl").glob("*/summary.json"), key=lambda p: p.stat().st_mtime)
    last = json.loads(summaries[-1].read_text())
    assert last["evaluate"]["champion_version"] == "1" and "champion" in last["evaluate"]["metrics"]
    assert last["register"]["registered"] is False and "approval rejected" in last["register"]["reasons"][0]
