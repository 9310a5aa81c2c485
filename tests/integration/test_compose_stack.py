"""The distributed deployment for real: docker-compose.yaml brought up, the whole chain run, faults injected.

Runs where a compose engine answers (Docker, or Podman serving the Docker API), skips and says why elsewhere.
The stack is the project's compose file and Dockerfile under a project name of its own, started as a new user
would (docs/deployment.md: a production `.env`, the CPU deployment, nothing prepared by hand: the
tiny base model of the sample use case is made by airflow-init). Everything is reached on 127.0.0.1 through the
published ports: Airflow's REST API, the MLflow server (MLflow's client) and the model API (plain HTTP). The stack
is always torn down with its volumes. Durations go to ``test-artifacts/compose-timings.json``.

MLflow runs with its basic-auth app: the tests reach it as the pipeline does (the service account), check that no
login, a wrong password and the model API's read-only account cannot write the registry, and that an adapter changed
in the artifact store after registration is refused by the model API while the previous version keeps serving.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path

import pytest
import requests
from compose_stack import FAULT_USE_CASE, SAMPLE_USE_CASE, ComposeStack, skip_reason

pytestmark = pytest.mark.slow

TIMINGS = Path(__file__).resolve().parents[2] / "test-artifacts" / "compose-timings.json"
RUNS = "/opt/llmops/home/runs"
FAULT_EPOCHS = 25  # 400 steps at 16 a epoch: the worker is killed after the first complete checkpoint (step 8)
STEPS_PER_EPOCH = 16


def _record(stack: ComposeStack, **seconds: float) -> None:
    stack.timings.update({k: round(v, 1) for k, v in seconds.items()})
    TIMINGS.parent.mkdir(exist_ok=True)
    TIMINGS.write_text(json.dumps(stack.timings, indent=2))


def _wait(what: str, predicate, timeout: float, stack: ComposeStack, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"not within {timeout:.0f}s: {what}\n{stack.tails()}")


def _run_dir(use_case: str, run_id: str) -> str:
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in run_id)
    return f"{RUNS}/{use_case}/{safe}"


def _mlflow(stack: ComposeStack):
    from mlflow.tracking import MlflowClient

    return MlflowClient(tracking_uri=stack.mlflow_url, registry_uri=stack.mlflow_url)


def _versions_of_run(stack: ComposeStack, model: str, run_id: str) -> list:
    return [v for v in _mlflow(stack).search_model_versions(f"name = '{model}'") if v.tags.get("dag_run_id") == run_id]


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    stack = ComposeStack(tmp_path_factory.mktemp("compose"))
    # MLflow's client in this process logs in as the pipeline's service account
    login = dict(zip(("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"), stack.mlflow_accounts["service"],
                     strict=True))
    saved = {k: os.environ.get(k) for k in login}
    os.environ.update(login)
    started = time.monotonic()
    try:
        stack.up()
        _record(stack)
        yield stack
    finally:
        for k, v in saved.items():
            os.environ.pop(k, None) if v is None else os.environ.update({k: v})
        stack.down()
        _record(stack, total=time.monotonic() - started)
        print(f"compose stack timings (s): {stack.timings}")


@pytest.fixture(scope="module")
def api(stack):
    from rest_api import AirflowAPI

    return AirflowAPI(stack.airflow_url, "admin", stack.password, on_timeout=stack.tails)


def _dataset_run(stack, api, use_case: str) -> str:
    """One dataset run, with the finetune DAG paused so the new snapshot starts no run beside the one under test."""
    dataset, finetune = f"{use_case}__dataset", f"{use_case}__finetune"
    api.wait_for_dag(dataset, timeout=300)
    api.wait_for_dag(finetune, timeout=300)
    api.set_paused(finetune, True)
    api.set_paused(dataset, False)
    run = api.trigger(dataset)
    states = api.wait_for_runs(dataset, [run], timeout=900)
    assert states[run] == "success", f"dataset run {states}\n{stack.tails()}"
    api.set_paused(finetune, False)
    return run


def test_a_fresh_stack_runs_the_sample_chain_registers_and_serves_the_champion(stack, api):
    started = time.monotonic()
    _dataset_run(stack, api, SAMPLE_USE_CASE)
    dataset_done = time.monotonic()
    finetune = f"{SAMPLE_USE_CASE}__finetune"
    run_id = api.trigger(finetune)
    states = api.wait_for_runs(finetune, [run_id], timeout=1800)
    assert states[run_id] == "success", f"finetune run {states}\n{stack.tails()}"
    tis = api.task_instances(finetune, run_id)
    assert {t: ti["state"] for t, ti in tis.items()} == dict.fromkeys(("finetune", "evaluate", "gate", "register"),
                                                                     "success")
    _record(stack, sample_dataset_run=dataset_done - started, sample_finetune_run=time.monotonic() - dataset_done)

    # the MLflow server: one version for this DAG run, with both aliases (the first version is also champion)
    model = f"{SAMPLE_USE_CASE}-lora"
    versions = _versions_of_run(stack, model, run_id)
    assert len(versions) == 1, [(v.version, v.tags) for v in versions]
    version = versions[0].version
    client = _mlflow(stack)
    assert client.get_model_version_by_alias(model, "champion").version == version
    assert client.get_model_version_by_alias(model, "challenger").version == version

    # the model API picks the new champion up by itself and answers with it, only to a caller with a key
    key = {"Authorization": f"Bearer {stack.api_key}"}

    def serving_champion():
        r = requests.get(f"{stack.api_url}/healthz", headers=key, timeout=30)
        return r.status_code == 200 and str(r.json()["versions"].get("champion")) == str(version)

    _wait(f"the API serving champion version {version}", serving_champion, timeout=300, stack=stack, interval=5)
    r = requests.post(f"{stack.api_url}/v1/generate", headers=key, timeout=120,
                      json={"prompt": "How do I undo the last commit in git?", "max_new_tokens": 8})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == {"name": model, "version": str(version), "alias": "champion"}
    assert isinstance(body["completion"], str) and body["generated_tokens"] >= 1
    for headers in ({}, {"Authorization": "Bearer sk-not-a-key"}):
        anonymous = requests.post(f"{stack.api_url}/v1/generate", headers=headers, timeout=30,
                                  json={"prompt": "How do I undo the last commit in git?"})
        assert anonymous.status_code == 401, anonymous.text
    assert requests.get(f"{stack.api_url}/livez", timeout=30).status_code == 200  # the probe needs no key

    checked = time.monotonic()
    _registry_needs_a_login_and_the_model_api_only_reads(stack, model, version)
    _a_changed_adapter_is_refused_and_the_champion_keeps_serving(stack, model, version, key)
    _record(stack, registry_security_checks=time.monotonic() - checked)


def _registry_needs_a_login_and_the_model_api_only_reads(stack: ComposeStack, model: str, version: str) -> None:
    """MLflow through its published port: no login, a wrong password or an unknown user reads and writes nothing
    (401); the model API's account and the reader's read the registry and artifacts but cannot move an alias (403);
    the service account can."""
    api = f"{stack.mlflow_url}/api/2.0/mlflow"

    def read(auth):
        return requests.get(f"{api}/registered-models/alias", params={"name": model, "alias": "champion"},
                            auth=auth, timeout=30)

    def move(auth):
        return requests.post(f"{api}/registered-models/alias", auth=auth, timeout=30,
                             json={"name": model, "alias": "champion", "version": str(version)})

    service = stack.mlflow_accounts["service"]
    for auth in (None, (service[0], "not-the-password"), ("nobody", "not-a-password-either")):
        assert read(auth).status_code == 401, auth
        assert move(auth).status_code == 401, auth
        assert requests.get(f"{api}/experiments/search", params={"max_results": 5}, auth=auth,
                            timeout=30).status_code == 401, auth
        assert requests.get(f"{stack.mlflow_url}/api/2.0/mlflow-artifacts/artifacts", auth=auth,
                            timeout=30).status_code == 401, auth
    for role in ("serving", "reader"):
        auth = stack.mlflow_accounts[role]
        r = read(auth)
        assert r.status_code == 200 and r.json()["model_version"]["version"] == str(version), (role, r.text)
        runs = requests.get(f"{api}/runs/get", params={"run_id": r.json()["model_version"]["run_id"]}, auth=auth,
                            timeout=30)
        assert runs.status_code == 200, (role, runs.text)
        refused = move(auth)
        assert refused.status_code == 403, (role, refused.status_code, refused.text)
    assert move(service).status_code == 200  # the pipeline's account moves aliases (here: to where it is)


def _a_changed_adapter_is_refused_and_the_champion_keeps_serving(stack: ComposeStack, model: str, version: str,
                                                                 key: dict) -> None:
    """A copy of the champion registered as a new version (its files and tags, by the service account), its weights
    then changed inside the MLflow artifact volume and `champion` moved to it: the model API refuses it (logged,
    counted, listed in /healthz) and keeps serving `version`. `champion` is moved back afterwards."""
    import mlflow
    import mlflow.artifacts

    client = _mlflow(stack)
    mlflow.set_tracking_uri(stack.mlflow_url)
    champion = client.get_model_version(model, version)
    local = mlflow.artifacts.download_artifacts(artifact_uri=champion.source, dst_path=tempfile.mkdtemp())
    copy = client.create_run(client.get_run(champion.run_id).info.experiment_id, run_name="changed-adapter-check")
    client.log_artifacts(copy.info.run_id, local, "model")
    client.set_terminated(copy.info.run_id)
    tags = {k: v for k, v in champion.tags.items() if k != "dag_run_id"}
    assert tags.get("adapter.sha256"), champion.tags  # the register step recorded the adapter's digest
    changed = client.create_model_version(model, source=f"runs:/{copy.info.run_id}/model", run_id=copy.info.run_id,
                                          tags=tags).version
    artifacts = client.get_run(copy.info.run_id).info.artifact_uri.split("mlflow-artifacts:/", 1)[1]
    weights = f"/mlflow/artifacts/{artifacts.strip('/')}/model/artifacts/adapter/adapter_model.safetensors"
    proc = stack.exec("mlflow", f"test -f {weights} && printf 'x' >> {weights}")
    assert proc.returncode == 0, f"{weights}: {proc.stdout}{proc.stderr}"
    client.set_registered_model_alias(model, "champion", changed)
    try:
        def refused():
            r = requests.get(f"{stack.api_url}/healthz", headers=key, timeout=30)
            return r.status_code == 200 and str(changed) in r.json().get("refused", {}) and r.json()

        health = _wait(f"the API refusing version {changed}", refused, timeout=300, stack=stack, interval=5)
        assert str(health["versions"]["champion"]) == str(version), health
        assert "sha256" in health["refused"][str(changed)]
        r = requests.post(f"{stack.api_url}/v1/generate", headers=key, timeout=120,
                          json={"prompt": "How do I undo the last commit in git?", "max_new_tokens": 4})
        assert r.status_code == 200 and r.json()["model"]["version"] == str(version), r.text
        metrics = requests.get(f"{stack.api_url}/metrics", headers=key, timeout=30).text
        assert f'llmops_model_versions_refused_total{{alias="champion",version="{changed}"}} 1.0' in metrics
        logs = stack.compose("logs", "--no-color", "llmops-api", timeout=60).stdout
        assert f"refused {model} version {changed} for alias champion; still serving version {version}" in logs
    finally:
        client.set_registered_model_alias(model, "champion", version)


def test_a_killed_worker_and_a_restarted_scheduler_lose_nothing(stack, api):
    """The worker container is SIGKILLed while finetune trains (after its first complete checkpoint), then started
    again; the scheduler container is restarted while the retry runs. The run succeeds, the retry resumes from
    the checkpoint, no other task runs twice, and exactly one version is registered."""
    _dataset_run(stack, api, FAULT_USE_CASE)
    finetune, model = f"{FAULT_USE_CASE}__finetune", f"{FAULT_USE_CASE}-lora"
    run_id = api.trigger(finetune, {"epochs": FAULT_EPOCHS})
    run_dir = _run_dir(FAULT_USE_CASE, run_id)

    markers = f"{run_dir}/checkpoints/checkpoint-*/llmops_checkpoint.json"
    _wait("a complete checkpoint", lambda: stack.glob(markers), timeout=600, stack=stack, interval=1)
    before = stack.container("airflow-worker")
    stack.compose("kill", "--signal", "SIGKILL", "airflow-worker", timeout=60)
    killed_at, kill_ms = time.monotonic(), int(time.time() * 1000)
    assert stack.read_json(f"{run_dir}/train_result.json") is None, "training finished before the kill"
    complete = sorted(int(p.split("/checkpoint-")[1].split("/")[0]) for p in stack.glob(markers))
    assert complete, "the complete checkpoint vanished"
    # stopped, or already started again by its restart policy (engines differ on a killed container)
    _wait("the worker container killed", lambda: (now := stack.container("airflow-worker"))[0] != "running"
          or now[1] != before[1], timeout=60, stack=stack, interval=1)
    stack.compose("start", "airflow-worker", timeout=120)  # as an operator would; a no-op when it is running

    def retry_running():
        ti = api.task_instances(finetune, run_id).get("finetune") or {}
        return ti.get("try_number", 0) >= 2 and ti.get("state") == "running"

    _wait("the finetune task retried and running", retry_running, timeout=600, stack=stack)
    retried_at = time.monotonic()
    stack.compose("restart", "--timeout", "10", "airflow-scheduler", timeout=120)
    states = api.wait_for_runs(finetune, [run_id], timeout=1800)
    assert states[run_id] == "success", f"{states}\n{stack.tails()}"
    _record(stack, fault_kill_to_retry_running=retried_at - killed_at,
            fault_kill_to_run_success=time.monotonic() - killed_at)

    tis = api.task_instances(finetune, run_id)
    assert {t: ti["state"] for t, ti in tis.items()} == dict.fromkeys(tis, "success")
    assert tis["finetune"]["try_number"] >= 2
    # the restarted scheduler ran nothing twice
    assert {t: ti["try_number"] for t, ti in tis.items() if t != "finetune"} == dict.fromkeys(
        ("evaluate", "gate", "register"), 1)
    versions = _versions_of_run(stack, model, run_id)
    assert len(versions) == 1, [(v.version, v.tags) for v in versions]
    assert _mlflow(stack).get_model_version_by_alias(model, "champion").version == versions[0].version

    # the retry resumed from the checkpoint, not from step 0, and trained to the end
    result = stack.read_json(f"{run_dir}/train_result.json")
    assert result["steps"] == FAULT_EPOCHS * STEPS_PER_EPOCH
    resumed = result["resumed_from_step"]
    assert resumed is not None and resumed >= complete[-1], (resumed, complete)
    logs = stack.task_logs(finetune, run_id, "finetune")
    last = logs[max(logs)]
    assert "resuming from" in last and f"(step {resumed})" in last, last[-3000:]
    # MLflow: the retry's progress continues the global step
    history = _mlflow(stack).get_metric_history(versions[0].run_id, "train_loss")
    after = [m.step for m in history if m.timestamp > kill_ms]
    assert after and min(after) > resumed, (resumed, sorted(after)[:5])
    assert max(m.step for m in history) == FAULT_EPOCHS * STEPS_PER_EPOCH


def test_an_empty_password_stops_up_before_the_database_is_initialised(stack, tmp_path):
    """A second project from the same image with a production .env whose database and MLflow service passwords are
    empty: `up postgres` fails, the secrets check names both variables, and PostgreSQL never started (so its volume
    was never initialised with the fallback password)."""
    bad = ComposeStack(tmp_path, project=f"{stack.project}-bad-env")
    lines = [line for line in bad.env_file.read_text().splitlines()
             if not line.startswith(("POSTGRES_PASSWORD=", "MLFLOW_SERVICE_PASSWORD="))]
    bad.env_file.write_text("\n".join([*lines, "POSTGRES_PASSWORD=", "MLFLOW_SERVICE_PASSWORD="]) + "\n")
    try:
        proc = bad.compose("up", "--detach", "--no-build", "postgres", timeout=300, check=False)
        assert proc.returncode != 0, proc.stdout + proc.stderr
        logs = bad.compose("logs", "--no-color", "deployment-check", timeout=60, check=False).stdout
        assert "POSTGRES_PASSWORD" in logs and "MLFLOW_SERVICE_PASSWORD" in logs, logs
        assert bad.container("postgres")[0] in ("absent", "created"), bad.container("postgres")
    finally:
        bad.down()
