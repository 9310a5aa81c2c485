"""Fixtures for the distributed topology: CeleryExecutor on this machine's PostgreSQL and Redis, run as processes.

Skips (with the reason) when PostgreSQL or Redis is not reachable or the Celery/PostgreSQL/Redis client packages
are missing, so the suite still passes on a laptop without them.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from pathlib import Path

import pytest
from celery_topology import FAULT_SETTINGS, FAULT_USE_CASE, FINETUNE_CONF, USE_CASE

from llmops.embedded import embedded_env

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]


def _load_write_use_case():
    """The e2e tests' use-case writer (same small settings), loaded by path: conftest modules are not importable."""
    spec = importlib.util.spec_from_file_location("llmops_e2e_conftest", ROOT / "tests" / "e2e" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.write_use_case


def topology_skip_reason() -> str | None:
    from celery_topology import PG_HOST, PG_PORT, REDIS_HOST, REDIS_PORT, reachable

    for module in ("psycopg2", "redis", "airflow.providers.celery"):
        try:
            found = importlib.util.find_spec(module) is not None
        except ModuleNotFoundError:
            found = False
        if not found:
            return f"{module} is not installed (pip install -r requirements.txt -c constraints.txt)"
    if not reachable(PG_HOST, PG_PORT):
        return f"PostgreSQL is not reachable at {PG_HOST}:{PG_PORT} (needed as Airflow/MLflow metadata DB)"
    if not reachable(REDIS_HOST, REDIS_PORT):
        return f"Redis is not reachable at {REDIS_HOST}:{REDIS_PORT} (needed as the Celery broker)"
    return None


@pytest.fixture(scope="session")
def test_secrets() -> dict[str, str]:
    """Secrets handed to every component; they must never show up in task logs, XCom or MLflow."""
    return {"connection_password": "connpw-" + secrets.token_hex(12),
            "mlflow_token": "mlflowtok-" + secrets.token_hex(12)}


@pytest.fixture(scope="session")
def topology(tmp_path_factory, tiny_model_dir, sample_rows, test_secrets):
    reason = topology_skip_reason()
    if reason:
        pytest.skip(reason)
    from celery_topology import Topology

    base = tmp_path_factory.mktemp("topology")
    data, use_cases = base / "data", base / "use_cases"
    data.mkdir()
    use_cases.mkdir()
    # the oldest 600 rows: about six weekly intervals from 2026-01-05, so a backfill has data in each week
    rows = sample_rows.sort_values("created_at").head(600)
    rows.rename(columns={"prompt": "question", "response": "answer"}).to_json(
        data / "qa.jsonl", orient="records", lines=True, date_format="iso")
    _load_write_use_case()(
        use_cases, USE_CASE, base_model=str(tiny_model_dir),
        source={"path": str(data / "qa.jsonl"), "allowed_roots": [str(data)]},
        training={"queue": "gpu", "pool": "default_pool", "max_train_rows": 256},
        gate={"rules": [{"metric": "eval_loss", "max": 1e6}], "promote_to_champion": True})

    env = embedded_env({"PATH": os.environ["PATH"]})
    env.update({
        "LLMOPS_HOME": str(base / "llmops-home"),
        "LLMOPS_USE_CASES_DIR": str(use_cases),
        "AIRFLOW_HOME": str(base / "airflow-home"),
        "HOME": os.environ.get("HOME", str(base)),
        "AIRFLOW_CONN_LLMOPS_WAREHOUSE": f"postgresql://svc-llmops:{test_secrets['connection_password']}"
                                         "@warehouse.internal:5432/analytics",
        "MLFLOW_TRACKING_TOKEN": test_secrets["mlflow_token"],
    })
    topo = Topology(base, env)
    try:
        topo.start()
        yield topo
    except BaseException:
        print(topo.tails())
        raise
    finally:
        topo.stop()


@pytest.fixture(scope="module")
def fault_topology(tmp_path_factory, tiny_model_dir, sample_rows):
    """A topology of its own for the fault tests (they kill and restart its parts), with a private Redis when
    ``redis-server`` is installed, so that the broker can be restarted without touching the machine's Redis."""
    import shutil

    reason = topology_skip_reason()
    if reason:
        pytest.skip(reason)
    from celery_topology import Topology

    base = tmp_path_factory.mktemp("faults")
    data, use_cases = base / "data", base / "use_cases"
    data.mkdir()
    use_cases.mkdir()
    rows = sample_rows.sort_values("created_at").head(300).rename(columns={"prompt": "question", "response": "answer"})
    rows.to_json(data / "qa.jsonl", orient="records", lines=True, date_format="iso")
    # 256 rows in batches of 16: 16 steps per epoch; a complete checkpoint every 8 steps, progress every 4
    _load_write_use_case()(
        use_cases, FAULT_USE_CASE, base_model=str(tiny_model_dir), schedule=None, retries=3, retry_delay_s=10,
        source={"path": str(data / "qa.jsonl"), "allowed_roots": [str(data)]},
        training={"queue": "gpu", "pool": "default_pool", "max_train_rows": 256, "checkpoint_every_steps": 8,
                  "keep_checkpoints": 2, "logging_steps": 4},
        evaluation={"max_eval_rows": 24, "generation_samples": 4, "max_new_tokens": 16},
        gate={"rules": [{"metric": "eval_loss", "max": 1e6}], "promote_to_champion": True})
    env = embedded_env({"PATH": os.environ["PATH"]})
    env.update({"LLMOPS_HOME": str(base / "llmops-home"), "LLMOPS_USE_CASES_DIR": str(use_cases),
                "AIRFLOW_HOME": str(base / "airflow-home"), "HOME": os.environ.get("HOME", str(base))})
    topo = Topology(base, env, private_redis=shutil.which("redis-server") is not None, settings=FAULT_SETTINGS)
    try:
        topo.start()
        yield topo
    except BaseException:
        print(topo.tails())
        raise
    finally:
        topo.stop()


@pytest.fixture(scope="session")
def api(topology):
    from rest_api import AirflowAPI

    return AirflowAPI(topology.api_url, topology.username, topology.password, on_timeout=topology.tails)


@pytest.fixture(scope="session")
def pipeline(topology, api) -> dict:
    """The sample pipeline through the REST API: the dataset DAG, then the finetune DAG with a conf."""
    dataset, finetune = f"{USE_CASE}__dataset", f"{USE_CASE}__finetune"
    api.wait_for_dag(dataset)
    api.wait_for_dag(finetune)
    api.set_paused(finetune, True)  # a snapshot must not start an asset-triggered run beside the one under test
    api.set_paused(dataset, False)
    dataset_run = api.trigger(dataset)
    states = api.wait_for_runs(dataset, [dataset_run], timeout=300)
    assert states[dataset_run] == "success", f"dataset run {states}\n{topology.tails()}"
    api.set_paused(finetune, False)
    finetune_run = api.trigger(finetune, FINETUNE_CONF)
    states = api.wait_for_runs(finetune, [finetune_run], timeout=600)
    api.set_paused(finetune, True)
    assert states[finetune_run] == "success", f"finetune run {states}\n{topology.tails()}"
    return {"dataset": dataset, "finetune": finetune, "dataset_run": dataset_run, "finetune_run": finetune_run}
