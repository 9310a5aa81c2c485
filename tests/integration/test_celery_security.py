"""Security of the distributed topology: the API needs auth, and secrets never leak into logs, XCom or MLflow."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from celery_topology import query

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/v2/dags"),
    ("GET", "/api/v2/connections"),
    ("POST", "/api/v2/dags/it_qa__finetune/dagRuns"),
    ("PATCH", "/api/v2/dags/it_qa__finetune"),
])
def test_the_api_refuses_unauthenticated_calls(topology, method, path):
    r = requests.request(method, topology.api_url + path, json={}, timeout=30)
    assert r.status_code in (401, 403), (r.status_code, r.text[:300])
    forged = requests.request(method, topology.api_url + path, json={}, timeout=30,
                              headers={"Authorization": "Bearer not-a-real-token"})
    assert forged.status_code in (401, 403), (forged.status_code, forged.text[:300])


def test_a_wrong_password_gets_no_token(topology):
    r = requests.post(f"{topology.api_url}/auth/token", json={"username": topology.username, "password": "wrong"},
                      timeout=30)
    assert r.status_code in (401, 403)


def test_secrets_never_reach_task_logs_xcom_or_mlflow(topology, api, pipeline, test_secrets):
    needles = {**test_secrets, "api_password": topology.password, "api_token": api.token}
    task_logs = list(Path(topology.env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"]).rglob("*.log"))
    assert any("finetune" in str(p) for p in task_logs), "no finetune task log to check"
    haystacks = {str(p): p.read_text(errors="replace") for p in task_logs}
    haystacks["worker stdout"] = "".join(p.read_text(errors="replace") for p in topology.logs.glob("worker-*.log"))
    haystacks["xcom"] = "\n".join(str(row) for row in query(topology.airflow_db, "SELECT value::text FROM xcom"))
    assert len(haystacks["xcom"]) > 100, "expected XCom values from the pipeline's tasks"

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=topology.mlflow_url)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert runs, "expected MLflow runs"
    haystacks["mlflow"] = "\n".join(f"{r.data.params}\n{r.data.tags}" for r in runs)
    versions = client.search_model_versions()
    haystacks["mlflow versions"] = "\n".join(str(v.tags) for v in versions)
    leaks = [(what, where) for what, secret in needles.items() for where, text in haystacks.items() if secret in text]
    assert not leaks, f"secrets found: {leaks}"
