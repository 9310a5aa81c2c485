"""The real DAGs, end to end, on tiny data: dataset -> finetune -> evaluate -> gate -> register (the first run is
the session's ``qa_champion``, tests/e2e/conftest.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests import airflow_db

pytestmark = pytest.mark.slow


def _output(proc) -> str:
    return proc.stdout + proc.stderr


def _mlflow(airflow):
    os.environ["MLFLOW_TRACKING_URI"] = airflow.env["MLFLOW_TRACKING_URI"]
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=airflow.env["MLFLOW_TRACKING_URI"])


def _task_states(airflow, dag_id: str) -> dict[str, str]:
    """The task states of the DAG's newest run, as Airflow's metadata DB records them."""
    return airflow_db.task_states(airflow.env, dag_id)


def _summary(airflow, use_case: str) -> dict:
    found = sorted((airflow.home / "runs" / use_case).glob("*/summary.json"), key=lambda p: p.stat().st_mtime)
    assert found, f"no run summary for {use_case}"
    return json.loads(found[-1].read_text())


def test_pipeline_registers_a_model_version_with_lineage(airflow, qa_champion):
    snapshots = list((airflow.home / "snapshots" / "e2e_qa").glob("*/manifest.json"))
    assert len(snapshots) == 1
    manifest = json.loads(snapshots[0].read_text())
    assert manifest["rows"]["input"] == 400 and manifest["validation"]["success"] is True

    client = _mlflow(airflow)
    versions = client.search_model_versions("name = 'e2e_qa-lora'")
    assert len(versions) == 1
    v = versions[0]
    assert v.tags["snapshot_id"] == manifest["snapshot_id"]
    assert v.tags["dag_run_id"].startswith("manual__")
    assert v.tags["base_model"].endswith("tiny")
    assert len(v.tags["config_hash"]) == 16 and len(v.tags["prompt_template_hash"]) == 12
    assert float(v.tags["metric.eval_loss"]) > 0
    assert client.get_model_version_by_alias("e2e_qa-lora", "champion").version == v.version
    assert client.get_model_version_by_alias("e2e_qa-lora", "challenger").version == v.version
    run = client.get_run(v.run_id)
    assert run.data.params["training.lora"].startswith("{") and "'r': 4" in run.data.params["training.lora"]
    assert run.data.metrics["challenger_eval_loss"] < run.data.metrics["base_eval_loss"]
    assert len(client.get_metric_history(v.run_id, "train_loss")) >= 1
    artifacts = {f.path for f in client.list_artifacts(v.run_id, "adapter")}
    assert "adapter/adapter_model.safetensors" in artifacts
    summary = _summary(airflow, "e2e_qa")
    assert summary["gate"]["passed"] is True and summary["register"]["version"] == str(v.version)


def test_a_gate_that_cannot_pass_registers_nothing(airflow):
    assert airflow.dags_test("e2e_strict__dataset").returncode == 0
    finetune = airflow.dags_test("e2e_strict__finetune")
    out = _output(finetune)
    assert finetune.returncode == 0, out[-4000:]  # a rejection is not a DAG failure
    assert "gate REJECTED" in out and "exact_match" in out
    states = _task_states(airflow, "e2e_strict__finetune")
    assert states == {"finetune": "success", "evaluate": "success", "gate": "success", "register": "skipped"}, states
    client = _mlflow(airflow)
    assert client.search_model_versions("name = 'e2e_strict-lora'") == []
    summary = _summary(airflow, "e2e_strict")
    assert summary["gate"]["passed"] is False and summary["register"]["registered"] is False


def test_a_malformed_row_fails_ingest_naming_file_and_line(airflow):
    proc = airflow.dags_test("e2e_broken__dataset")
    out = _output(proc)
    assert proc.returncode != 0
    assert "qa.jsonl:5: not valid JSON" in out
    assert not (airflow.home / "snapshots" / "e2e_broken").exists(), "something downstream of ingest ran"
    assert not list(Path(airflow.home / "runs").glob("e2e_broken/*/ingested.parquet"))


def test_a_crafted_snapshot_id_is_refused_before_anything_is_read(airflow):
    """`../<another use case>/<id>` through `dags test -c`: refused by its shape, nothing trained or registered."""
    client = _mlflow(airflow)
    before = len(client.search_model_versions("name = 'e2e_qa-lora'"))
    runs_before = set((airflow.home / "runs").glob("e2e_qa/*"))
    proc = airflow.dags_test("e2e_qa__finetune", conf=json.dumps({"snapshot_id": "../e2e_strict/0123456789abcdef"}))
    out = _output(proc)
    assert proc.returncode != 0
    assert "snapshot_id" in out and "../e2e_strict/0123456789abcdef" in out
    assert "training on snapshot" not in out
    assert len(client.search_model_versions("name = 'e2e_qa-lora'")) == before
    new_runs = set((airflow.home / "runs").glob("e2e_qa/*")) - runs_before
    assert not any((r / "adapter").exists() or (r / "checkpoints").exists() for r in new_runs)
