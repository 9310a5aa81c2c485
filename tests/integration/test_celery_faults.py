"""Faults on the distributed topology: a lost GPU worker, a restarted scheduler, an MLflow outage, a broker restart.

Each test triggers the finetune DAG through the REST API, injects one fault into the running topology (real
processes, whole process groups) and then answers the same questions: did the run finish, is exactly one model
version registered for it, did training resume (or run once, when the fault did not touch it), and are the
snapshot and the registered adapter intact. Recovery times are measured and printed (and written to
``test-artifacts/fault-recovery.json``), never asserted. Settings: ``FAULT_SETTINGS`` in celery_topology.py.
"""

from __future__ import annotations

import hashlib
import json
import signal
import time
from pathlib import Path

import pytest
from celery_topology import FAULT_USE_CASE, query

pytestmark = pytest.mark.slow

DATASET, FINETUNE = f"{FAULT_USE_CASE}__dataset", f"{FAULT_USE_CASE}__finetune"
MODEL = f"{FAULT_USE_CASE}-lora"
STEPS_PER_EPOCH = 16  # 256 rows, batch 16
RECOVERY = Path(__file__).resolve().parents[2] / "test-artifacts" / "fault-recovery.json"


# helpers ---------------------------------------------------------------------------------------------------------
def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _record(fault: str, **seconds: float) -> None:
    RECOVERY.parent.mkdir(exist_ok=True)
    data = json.loads(RECOVERY.read_text()) if RECOVERY.exists() else {}
    data[fault] = {k: round(v, 1) for k, v in seconds.items()}
    RECOVERY.write_text(json.dumps(data, indent=2))
    print(f"recovery ({fault}): {data[fault]}")


def _ti_row(topo, run_id: str, task_id: str) -> tuple | None:
    rows = query(topo.airflow_db, "SELECT state, try_number, hostname FROM task_instance "
                                  f"WHERE dag_id = '{FINETUNE}' AND run_id = '{run_id}' AND task_id = '{task_id}'")
    return rows[0] if rows else None


def _wait(what: str, predicate, timeout: float, topo, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not within {timeout:.0f}s: {what}\n{topo.tails()}")


def _task_logs(topo, run_id: str, task_id: str) -> dict[int, str]:
    """attempt number -> the task log text of that try."""
    root = Path(topo.env["AIRFLOW__LOGGING__BASE_LOG_FOLDER"])
    logs = {}
    for p in root.rglob(f"dag_id={FINETUNE}/*/task_id={task_id}/attempt=*.log"):
        if f"run_id={run_id}" in str(p):
            logs[int(p.stem.split("=")[1])] = p.read_text(errors="replace")
    return logs


def _run_dir(topo, run_id: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    return Path(topo.env["LLMOPS_HOME"]) / "runs" / FAULT_USE_CASE / safe


def _client(topo):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=topo.mlflow_url, registry_uri=topo.mlflow_url)


def _history_tries(topo, run_id: str) -> list[tuple]:
    return query(topo.airflow_db, "SELECT task_id, try_number, state FROM task_instance_history "
                                  f"WHERE dag_id = '{FINETUNE}' AND run_id = '{run_id}' ORDER BY task_id, try_number")


def assert_nothing_lost(topo, api, run_id: str, snapshot: dict, *, epochs: int) -> dict:
    """The run succeeded, one model version is registered for it, the snapshot did not change, the registered
    adapter (inside the registered MLflow model) is the one the run trained (byte for byte) and loads, and training
    reached its last step."""
    assert api.dag_run(FINETUNE, run_id)["state"] == "success"
    tis = api.task_instances(FINETUNE, run_id)
    assert {t: ti["state"] for t, ti in tis.items()} == dict.fromkeys(tis, "success")
    client = _client(topo)
    versions = [v for v in client.search_model_versions(f"name = '{MODEL}'") if v.tags.get("dag_run_id") == run_id]
    assert len(versions) == 1, [(v.version, v.run_id) for v in versions]
    version = versions[0]
    assert _digest(snapshot["path"]) == snapshot["files"], "the dataset snapshot changed"
    run_dir = _run_dir(topo, run_id)
    result = json.loads((run_dir / "train_result.json").read_text())
    assert result["steps"] == epochs * STEPS_PER_EPOCH
    local = run_dir / "adapter" / "adapter_model.safetensors"
    import mlflow.artifacts
    from safetensors.torch import load_file

    downloaded = Path(mlflow.artifacts.download_artifacts(
        artifact_uri=f"{version.source}/artifacts/adapter/adapter_model.safetensors",
        dst_path=str(topo.base / f"dl-{version.version}"),
        tracking_uri=topo.mlflow_url))
    assert downloaded.read_bytes() == local.read_bytes(), "the registered adapter is not the one this run trained"
    assert load_file(str(downloaded)), "the registered adapter has no tensors"
    return {"version": version, "result": result, "tis": tis}


def _trigger(api, epochs: int) -> str:
    return api.trigger(FINETUNE, {"epochs": epochs, "lora_rank": 4})


# fixtures --------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def fault_api(fault_topology):
    from rest_api import AirflowAPI

    return AirflowAPI(fault_topology.api_url, fault_topology.username, fault_topology.password,
                      on_timeout=fault_topology.tails)


@pytest.fixture(scope="module")
def snapshot(fault_topology, fault_api) -> dict:
    """One dataset snapshot made through the scheduler; its files' digests, to compare after every fault."""
    fault_api.wait_for_dag(DATASET)
    fault_api.wait_for_dag(FINETUNE)
    fault_api.set_paused(FINETUNE, True)  # no asset-triggered run beside the ones under test
    fault_api.set_paused(DATASET, False)
    run = fault_api.trigger(DATASET)
    states = fault_api.wait_for_runs(DATASET, [run], timeout=400)
    assert states[run] == "success", f"dataset run {states}\n{fault_topology.tails()}"
    fault_api.set_paused(FINETUNE, False)
    manifests = list(Path(fault_topology.env["LLMOPS_HOME"], "snapshots", FAULT_USE_CASE).rglob("manifest.json"))
    assert len(manifests) == 1
    return {"path": manifests[0].parent, "files": _digest(manifests[0].parent)}


# the faults ------------------------------------------------------------------------------------------------------
def test_a_lost_gpu_worker_is_detected_and_the_retry_resumes_at_the_checkpoint(fault_topology, fault_api, snapshot):
    topo, epochs = fault_topology, 40  # 640 steps: long enough to kill between the first checkpoint and the end
    run_id = _trigger(fault_api, epochs)
    ckpts = _run_dir(topo, run_id) / "checkpoints"
    marker = _wait("a complete checkpoint", lambda: next(iter(ckpts.glob("checkpoint-*/llmops_checkpoint.json")), None),
                   timeout=420, topo=topo, interval=0.2)
    topo.kill("worker-gpu", signal.SIGKILL)  # the worker, its task supervisor and the training process
    killed_at, kill_ms = time.monotonic(), int(time.time() * 1000)
    assert not (_run_dir(topo, run_id) / "train_result.json").exists(), "training finished before the kill"
    complete = sorted(int(p.parent.name.split("-")[1]) for p in ckpts.glob("checkpoint-*/llmops_checkpoint.json"))
    assert complete, f"checkpoint {marker} vanished"
    topo.restart("worker-gpu", as_name="worker-gpu-2", LLMOPS_WORKER_HOSTNAME="llmops-worker-gpu-2")

    retried = _wait("the finetune task to be retried",
                    lambda: (row := _ti_row(topo, run_id, "finetune")) and row[1] >= 2 and row[0] == "running",
                    timeout=300, topo=topo)
    retried_at = time.monotonic()
    states = fault_api.wait_for_runs(FINETUNE, [run_id], timeout=600)
    assert states[run_id] == "success", f"{states}\n{topo.tails()}"
    _record("gpu worker SIGKILLed", kill_to_retry_running=retried_at - killed_at,
            kill_to_run_success=time.monotonic() - killed_at)

    out = assert_nothing_lost(topo, fault_api, run_id, snapshot, epochs=epochs)
    finetune = out["tis"]["finetune"]
    assert retried and finetune["try_number"] >= 2
    assert finetune["hostname"] == "llmops-worker-gpu-2"  # the retry ran on the new worker
    history = [h for h in _history_tries(topo, run_id) if h[0] == "finetune"]
    assert history and history[0][1] == 1, history  # the lost try is on record
    resumed = out["result"]["resumed_from_step"]
    assert resumed is not None and resumed >= complete[-1], (resumed, complete)  # not from step 0
    logs = _task_logs(topo, run_id, "finetune")
    last = logs[max(logs)]
    assert f"(step {resumed})" in last and "resuming from" in last, last[-3000:]
    # MLflow: the new try's progress continues the global step instead of starting again at 4
    history = _client(topo).get_metric_history(out["version"].run_id, "train_loss")
    after = [m.step for m in history if m.timestamp > kill_ms]
    assert after and min(after) > resumed, (resumed, sorted(after)[:5])
    assert max(m.step for m in history) == epochs * STEPS_PER_EPOCH


def test_a_scheduler_restart_mid_run_executes_no_task_twice(fault_topology, fault_api, snapshot):
    topo, epochs = fault_topology, 12
    run_id = _trigger(fault_api, epochs)
    _wait("finetune running", lambda: (row := _ti_row(topo, run_id, "finetune")) and row[0] == "running",
          timeout=300, topo=topo)
    topo.kill("scheduler", signal.SIGTERM)  # stop...
    stopped_at = time.monotonic()
    time.sleep(5)
    topo.restart("scheduler")  # ...and start again while finetune trains
    _wait("a task after finetune scheduled", lambda: (row := _ti_row(topo, run_id, "evaluate")) and row[0],
          timeout=600, topo=topo)
    scheduled_at = time.monotonic()
    states = fault_api.wait_for_runs(FINETUNE, [run_id], timeout=600)
    assert states[run_id] == "success", f"{states}\n{topo.tails()}"
    _record("scheduler stopped and started", stop_to_next_task_scheduled=scheduled_at - stopped_at,
            stop_to_run_success=time.monotonic() - stopped_at)

    out = assert_nothing_lost(topo, fault_api, run_id, snapshot, epochs=epochs)
    assert {t: ti["try_number"] for t, ti in out["tis"].items()} == dict.fromkeys(out["tis"], 1)
    assert _history_tries(topo, run_id) == []  # no earlier try of any task
    assert out["result"]["resumed_from_step"] is None  # trained once, start to end
    for task in out["tis"]:
        assert list(_task_logs(topo, run_id, task)) == [1], task
    assert _task_logs(topo, run_id, "finetune")[1].count(f"trained {epochs * STEPS_PER_EPOCH} steps") == 1


def test_an_mlflow_outage_before_register_is_logged_and_the_retry_registers_one_version(
        fault_topology, fault_api, snapshot):
    topo, epochs = fault_topology, 2
    run_id = _trigger(fault_api, epochs)
    _wait("gate succeeded", lambda: (row := _ti_row(topo, run_id, "gate")) and row[0] == "success",
          timeout=600, topo=topo, interval=0.2)
    topo.kill("mlflow", signal.SIGTERM)  # the server is down before register talks to it
    down_at = time.monotonic()
    _wait("register's first try failed", lambda: (row := _ti_row(topo, run_id, "register"))
          and row[0] in ("up_for_retry", "failed") or (row and row[1] >= 2), timeout=300, topo=topo)
    topo.restart("mlflow")
    topo.wait_http(f"{topo.mlflow_url}/health", "mlflow")
    back_at = time.monotonic()
    states = fault_api.wait_for_runs(FINETUNE, [run_id], timeout=300)
    assert states[run_id] == "success", f"{states}\n{topo.tails()}"
    done = time.monotonic()
    _record("MLflow server down before register", outage=back_at - down_at, server_back_to_run_success=done - back_at)

    out = assert_nothing_lost(topo, fault_api, run_id, snapshot, epochs=epochs)
    last = out["tis"]["register"]["try_number"]
    assert last >= 2, "register's first try ran before the server was stopped"
    logs = _task_logs(topo, run_id, "register")
    # every try before the last failed on the outage, with the one-line message (a retry that started while the
    # server was still coming back fails the same way), and the last one registered the version
    for attempt in range(1, last):
        assert f"MLflow tracking server {topo.mlflow_url} is unreachable while" in logs[attempt], logs[attempt][-3000:]
        assert "Airflow retries it" in logs[attempt]
    assert f"registered {MODEL} version {out['version'].version}" in logs[last]
    client = _client(topo)
    assert client.get_model_version_by_alias(MODEL, "champion").version == out["version"].version
    assert client.get_model_version_by_alias(MODEL, "challenger").version == out["version"].version


def test_a_broker_restart_mid_run_loses_no_task(fault_topology, fault_api, snapshot):
    topo, epochs = fault_topology, 12
    if not topo.private_redis:
        pytest.skip("redis-server is not installed: the machine's shared Redis is not restarted by tests "
                    "(apt-get install redis-server)")
    run_id = _trigger(fault_api, epochs)
    _wait("finetune running", lambda: (row := _ti_row(topo, run_id, "finetune")) and row[0] == "running",
          timeout=300, topo=topo)
    topo.kill("redis", signal.SIGTERM)  # a clean stop writes the append-only file, as a broker restart does
    down_at = time.monotonic()
    time.sleep(5)
    topo.restart("redis")
    _wait("redis listening", lambda: _redis_up(topo), timeout=60, topo=topo)
    back_at = time.monotonic()
    states = fault_api.wait_for_runs(FINETUNE, [run_id], timeout=600)
    assert states[run_id] == "success", f"{states}\n{topo.tails()}"
    _record("Redis broker restarted", outage=back_at - down_at, broker_back_to_run_success=time.monotonic() - back_at)

    out = assert_nothing_lost(topo, fault_api, run_id, snapshot, epochs=epochs)
    assert out["result"]["resumed_from_step"] is None  # the running training never noticed
    assert {t: ti["try_number"] for t, ti in out["tis"].items()} == dict.fromkeys(out["tis"], 1)
    assert _history_tries(topo, run_id) == []


def _redis_up(topo) -> bool:
    import redis

    try:
        return bool(redis.Redis(host="127.0.0.1", port=topo.redis_port, socket_timeout=2).ping())
    except redis.RedisError:
        return False
