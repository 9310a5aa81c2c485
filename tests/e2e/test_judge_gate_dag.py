"""The pairwise judge in the finetune DAG through real `airflow dags test` runs: the judge is this project's API on
loopback serving the tiny base model, named by an Airflow connection (``AIRFLOW_CONN_*``). The tiny model is a
useless judge: its agreement with the shipped human labels is below ``min_kappa``, so the gate sets its rule aside
and the `approve` HITL task asks a person, showing why; the reviewer's choices land in the labels file. With the
judge endpoint down the gate fails closed and nothing is registered."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from tests import airflow_db
from tests.e2e.conftest import AIRFLOW, ROOT

pytestmark = pytest.mark.slow
UC = "e2e_judge"

# Reads the approval task's form (subject, body) and answers it through the public REST API, as the UI does.
RESPOND = textwrap.dedent("""
    import json, sys
    from fastapi.testclient import TestClient
    from airflow.api_fastapi.app import create_app
    dag_id, run_id, answer = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
    url = f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances/approve/-1/hitlDetails"
    with TestClient(create_app("core")) as client:
        shown = client.get(url)
        r = client.patch(url, json=answer)
        print(json.dumps({"shown": shown.json(), "status": r.status_code, "answer": r.text}))
        sys.exit(0 if r.status_code == 200 else 1)
""")


def _conn(url: str, model: str) -> str:
    return json.dumps({"conn_type": "http", "host": url, "password": "none", "extra": {"model": model}})


@pytest.fixture(scope="module")
def judged(airflow, tiny_model_dir, tmp_path_factory):
    """The e2e use case with the judge on (3 prompts judged, the shipped labels copied), its snapshot made, and
    the judge API serving the tiny base model."""
    from llmops.config import load_by_name
    from llmops.demo.base_server import serve_base

    use_cases = Path(airflow.env["LLMOPS_USE_CASES_DIR"])
    labels = tmp_path_factory.mktemp("labels") / "labels.jsonl"
    shutil.copy(ROOT / "include" / "labels" / "python_docs_qa.jsonl", labels)
    cfg = yaml.safe_load((use_cases / "e2e_qa.yaml").read_text())
    cfg.update(name=UC, retries=0, serving={"max_new_tokens": 16})
    cfg["source"]["allowed_roots"] = [str(Path(cfg["source"]["path"]).parent)]
    # the tiny model rarely writes a parseable verdict: tolerated here (each counts as a tie), so kappa is computed
    cfg["evaluation"]["judge"] = {"enabled": True, "conn_id": "e2e_judge", "labels": str(labels), "min_kappa": 0.4,
                                  "max_prompts": 3, "max_failed": 1000, "timeout_s": 60, "concurrency": 4}
    cfg["evaluation"]["bootstrap_samples"] = 200
    cfg["gate"] = {"rules": [{"metric": "eval_loss_improvement", "min": 0.01},
                             {"metric": "judge.win_rate", "vs": "champion", "min": 0.5, "ci": True}],
                   "promote_to_champion": True, "approval_timeout_hours": 0.2}  # unanswered: rejected in 12 min
    (use_cases / f"{UC}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    dataset = airflow.dags_test(f"{UC}__dataset")
    assert dataset.returncode == 0, dataset.stdout[-3000:] + dataset.stderr[-3000:]
    with serve_base(load_by_name(UC, use_cases), max_new_tokens=16) as server:
        yield server, labels


def _versions(airflow) -> list[str]:
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=airflow.env["MLFLOW_TRACKING_URI"])
    return sorted(v.version for v in client.search_model_versions(f"name = '{UC}-lora'"))


def _latest_summary(airflow) -> dict:
    found = sorted((airflow.home / "runs" / UC).glob("*/summary.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(found[-1].read_text())


def test_an_untrusted_judge_hands_the_decision_to_a_person_whose_choices_become_labels(airflow, judged):
    server, labels = judged
    before_labels = len(labels.read_text().splitlines())
    before_versions = _versions(airflow)
    env = {**airflow.env, "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
           "AIRFLOW_CONN_E2E_JUDGE": _conn(server.base_url, server.model)}
    log = airflow.home.parent / f"{UC}-untrusted.log"
    with open(log, "w") as f:
        proc = subprocess.Popen([AIRFLOW, "dags", "test", f"{UC}__finetune"], env=env, stdout=f,
                                stderr=subprocess.STDOUT)
    deadline, run_id = time.monotonic() + 500, ""
    while not run_id and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(1)  # a look at the metadata DB with sqlite3, not an Airflow process (4 s of CPU each)
        run_id = airflow_db.awaiting_input(env, f"{UC}__finetune")
    if not run_id:
        proc.kill()
        pytest.fail("the approval task never waited for input:\n" + log.read_text()[-4000:])
    answer = {"chosen_options": ["Approve"], "params_input": {"preference_1": "a", "preference_2": "tie",
                                                              "preference_3": "skip"}}
    r = subprocess.run([sys.executable, "-c", RESPOND, f"{UC}__finetune", run_id, json.dumps(answer)], env=env,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-3000:]
    proc.wait(timeout=300)
    out = log.read_text()
    assert proc.returncode == 0, out[-4000:]

    # the judge ran against the loopback API, and was not trusted: kappa against the labels below min_kappa
    judge = json.loads((Path(_latest_summary(airflow)["gate"]["report"]).parent / "judge.json").read_text())
    assert judge["endpoint"] == server.base_url and judge["model"] == server.model
    assert judge["metrics"]["judge.labels"] == before_labels and judge["metrics"]["judge.pairs"] == 3
    assert not judge["trusted"] and judge["metrics"]["judge.kappa"] < 0.4
    # the gate did not act on the judge: only the loss rule decided; the form shows a person why
    gate = _latest_summary(airflow)["gate"]
    assert [rule["metric"] for rule in gate["rules"]] == ["eval_loss_improvement"] and gate["passed"] is True
    shown = json.loads(r.stdout.strip().splitlines()[-1])["shown"]
    assert "A person decides" in shown["body"] and "min_kappa 0.4" in shown["body"], shown["body"]
    assert "judge.win_rate" in shown["body"] and "**Pair 1**" in shown["body"]
    # approved: registered; the two choices (not the skipped one) appended to the labels
    assert len(_versions(airflow)) == len(before_versions) + 1
    new = [json.loads(line) for line in labels.read_text().splitlines()[before_labels:]]
    assert [(n["preferred"], n["source"]) for n in new] == [("a", "approval"), ("tie", "approval")]
    assert new[0]["prompt"] == judge["verdicts"][0]["prompt"] and new[0]["answer_a"] == judge["verdicts"][0]["x"]


def test_a_judge_that_is_down_fails_the_gate_closed(airflow, judged):
    """With ``max_failed`` at its default (0): every refused call is a failed verdict, and one is too many."""
    from llmops.ports import free_port

    path = Path(airflow.env["LLMOPS_USE_CASES_DIR"]) / f"{UC}.yaml"
    saved = path.read_text()
    cfg = yaml.safe_load(saved)
    cfg["evaluation"]["judge"].pop("max_failed")
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    before = _versions(airflow)
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    env = {**airflow.env, "AIRFLOW_CONN_E2E_JUDGE": _conn(dead, "judge")}
    try:
        proc = subprocess.run([AIRFLOW, "dags", "test", f"{UC}__finetune"], env=env, capture_output=True,
                              text=True, timeout=900)
    finally:
        path.write_text(saved)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out[-4000:]
    assert "JudgeUnavailable" in out and dead in out and "verdicts failed" in out, out[-4000:]
    assert _versions(airflow) == before  # nothing registered
    summary = _latest_summary(airflow)
    assert "gate" not in summary and not (summary.get("register") or {}).get("registered")
