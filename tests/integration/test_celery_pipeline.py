"""The pipeline on the distributed topology (CeleryExecutor, PostgreSQL, Redis, MLflow server), driven by REST."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from celery_topology import FINETUNE_CONF, USE_CASE

pytestmark = pytest.mark.slow


def test_finetune_runs_on_the_gpu_queue_worker_and_registers_in_the_mlflow_server(topology, api, pipeline):
    tis = api.task_instances(pipeline["finetune"], pipeline["finetune_run"])
    assert {ti["state"] for ti in tis.values()} == {"success"}, {t: ti["state"] for t, ti in tis.items()}
    finetune = tis["finetune"]
    assert finetune["queue"] == "gpu"
    assert finetune["hostname"] == topology.worker_hostnames["gpu"]
    assert finetune["pool"] == "default_pool"
    others = [ti for t, ti in tis.items() if t != "finetune" and ti["state"] == "success"]
    assert others and all(ti["queue"] == "default" for ti in others)
    assert all(ti["hostname"] == topology.worker_hostnames["default"] for ti in others)
    dag_run = api.dag_run(pipeline["finetune"], pipeline["finetune_run"])
    assert dag_run["conf"] == FINETUNE_CONF

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=topology.mlflow_url, registry_uri=topology.mlflow_url)
    versions = client.search_model_versions(f"name = '{USE_CASE}-lora'")
    assert len(versions) == 1
    version = versions[0]
    assert version.tags["dag_run_id"] == pipeline["finetune_run"]
    run = client.get_run(version.run_id)
    assert "'r': 4" in run.data.params["training.lora"]  # the conf's lora_rank reached training
    assert client.get_model_version_by_alias(f"{USE_CASE}-lora", "champion").version == version.version
    # artifacts went through the server (proxied artifact store), not to a worker-local path
    assert {f.path for f in client.list_artifacts(version.run_id, "adapter")} >= {"adapter/adapter_model.safetensors"}
    assert list((topology.base / "mlflow-artifacts").rglob("adapter_model.safetensors"))


def test_a_backfill_through_the_rest_api_makes_dataset_versions(topology, api, pipeline):
    dag_id = pipeline["dataset"]
    backfill = api.call("POST", "/backfills", expect=(200, 201), json={
        "dag_id": dag_id, "from_date": "2026-01-05T00:00:00Z", "to_date": "2026-01-26T00:00:00Z",
        "run_backwards": False, "dag_run_conf": {}, "reprocess_behavior": "completed", "max_active_runs": 1})
    assert backfill["dag_id"] == dag_id
    run_ids = _backfill_run_ids(api, dag_id)
    assert len(run_ids) >= 3, f"backfill {backfill} made runs {run_ids}"
    states = api.wait_for_runs(dag_id, run_ids, timeout=420)
    assert set(states.values()) == {"success"}, f"{states}\n{topology.tails()}"
    manifests = [json.loads(p.read_text())
                 for p in Path(topology.env["LLMOPS_HOME"], "snapshots", USE_CASE).rglob("manifest.json")]
    assert manifests, "the backfill runs wrote no dataset snapshot"
    assert all(m["validation"]["success"] for m in manifests)
    snapshot_events = api.call("GET", "/assets/events", params={"limit": 100})["asset_events"]
    backfill_events = [e for e in snapshot_events
                       if e.get("source_dag_id") == dag_id and e.get("source_run_id") in run_ids]
    assert len(backfill_events) == len(run_ids)
    assert {e["extra"].get("snapshot_id") for e in backfill_events} <= {m["snapshot_id"] for m in manifests}


def _backfill_run_ids(api, dag_id: str) -> list[str]:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        runs = [r["dag_run_id"] for r in api.dag_runs(dag_id) if r["run_type"] == "backfill"]
        if runs:
            return runs
        time.sleep(2)
    return []
