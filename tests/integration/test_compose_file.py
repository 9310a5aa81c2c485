"""docker-compose.yaml: the official Airflow 3 shape with Celery workers for `default` and `gpu` and MLflow.

No Docker engine is needed: the file is parsed and checked here; `docker compose config` also validates it
where the compose plugin is installed (it needs no running engine). test_compose_stack.py runs it for real.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
MLFLOW_ACCOUNTS = [f"MLFLOW_{who}_{what}" for who in ("ADMIN", "SERVICE", "READER", "SERVING")
                   for what in ("USERNAME", "PASSWORD")]
AIRFLOW_SERVICES = {"airflow-apiserver", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer",
                    "airflow-worker", "airflow-worker-gpu", "airflow-init"}


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def _mount_target(volume: str) -> str:
    """`source:target[:mode]`, where the source may hold `${VAR:-default}`."""
    parts = volume.split(":")
    return parts[-2] if parts[-1] in ("ro", "rw") else parts[-1]


def _command(service: dict) -> str:
    cmd = service.get("command", "")
    return " ".join(cmd) if isinstance(cmd, list) else cmd


def test_it_has_the_official_services_plus_a_gpu_worker_and_mlflow(compose):
    assert set(compose["services"]) >= AIRFLOW_SERVICES | {"postgres", "redis", "mlflow"}
    commands = {name: _command(s) for name, s in compose["services"].items()}
    assert commands["airflow-apiserver"] == "api-server"
    assert commands["airflow-scheduler"] == "scheduler"
    assert commands["airflow-dag-processor"] == "dag-processor"
    assert commands["airflow-triggerer"] == "triggerer"


def test_the_workers_serve_the_default_and_gpu_queues(compose):
    assert "--queues default" in _command(compose["services"]["airflow-worker"])
    gpu = compose["services"]["airflow-worker-gpu"]
    assert "--queues gpu" in _command(gpu)
    assert "--queues gpu" not in _command(compose["services"]["airflow-worker"])


def test_the_gpu_worker_reserves_the_nvidia_device_and_uses_the_cuda_torch_image(compose):
    gpu = compose["services"]["airflow-worker-gpu"]
    devices = gpu["deploy"]["resources"]["reservations"]["devices"]
    assert devices == [{"driver": "nvidia", "count": 1, "capabilities": ["gpu"]}]
    assert gpu["build"]["args"]["TORCH_VARIANT"].startswith("${TORCH_CUDA_VARIANT:-cu")
    assert compose["services"]["airflow-init"]["build"]["args"]["TORCH_VARIANT"] == "cpu"
    assert "deploy" not in compose["services"]["airflow-worker"]
    # a host without a GPU starts everything else with a plain `up`; `--profile gpu` adds this worker
    assert gpu["profiles"] == ["gpu"]
    assert all("profiles" not in s for name, s in compose["services"].items() if name not in ("airflow-worker-gpu",
                                                                                            "airflow-cli"))


def test_the_cpu_image_is_built_once_by_airflow_init_and_never_pulled(compose):
    image = compose["services"]["airflow-init"]["image"]
    sharing = [name for name, s in compose["services"].items() if s.get("image") == image]
    assert {"airflow-apiserver", "airflow-scheduler", "airflow-worker", "mlflow", "llmops-api"} <= set(sharing)
    assert [name for name in sharing if "build" in compose["services"][name]] == ["airflow-init"]
    # `up` builds what is missing before it creates any container, so one build serves them all
    assert all(compose["services"][name]["pull_policy"] == "never" for name in sharing)


def test_healthchecks_work_on_docker_and_podman_and_allow_for_a_small_host(compose):
    for name, service in compose["services"].items():
        check = service.get("healthcheck")
        if not check:
            continue
        test = " ".join(check["test"])
        # Podman sets no $HOSTNAME in healthcheck commands: $(hostname) or --local instead
        assert "HOSTNAME" not in test, name
        seconds = int(check.get("timeout", "30s").rstrip("s"))
        if test.startswith("CMD-SHELL") and ("airflow jobs check" in test or "celery" in test):
            assert seconds >= 60 and "--local" in test or "$$(hostname)" in test, name  # 5-16 s on 2 busy cores
        else:
            assert seconds >= 30, name
    # Docker's default stop timeout, also under Podman's API (which would otherwise kill at once)
    assert all(s["stop_grace_period"] == "10s" for s in compose["services"].values())
    ping = " ".join(compose["services"]["airflow-worker"]["healthcheck"]["test"])
    assert 'celery@$$(hostname)' in ping and "--timeout" in ping


def test_a_fresh_deployment_makes_the_tiny_base_model_the_samples_train_on(compose):
    init = compose["services"]["airflow-init"]["command"][-1]
    bootstrap = "python -m llmops.cli make-base-model --missing"
    assert bootstrap in init and init.index(bootstrap) < init.index("chown -R")  # made, then handed to airflow
    assert "PYTHONPATH=/opt/airflow/plugins" in init


def test_published_ports_take_an_address_and_a_port_from_env_and_bind_loopback_by_default(compose):
    for name, port in (("airflow-apiserver", "${AIRFLOW_PORT:-8080}:8080"), ("mlflow", "${MLFLOW_PORT:-5000}:5000"),
                       ("llmops-api", "${LLMOPS_API_PORT:-8000}:8000")):
        assert compose["services"][name]["ports"] == [f"${{PUBLISH_ADDRESS:-127.0.0.1}}:{port}"], name
    # nothing else is published (PostgreSQL, Redis, vLLM stay on the compose network), and no file nor the example
    # .env falls back to every interface
    published = {name for name, s in compose["services"].items() if "ports" in s}
    assert published == {"airflow-apiserver", "mlflow", "llmops-api"}
    for path in (COMPOSE, ROOT / "docker-compose.vllm.yaml"):
        text = path.read_text()
        assert "0.0.0.0}" not in text and text.count("${PUBLISH_ADDRESS:-127.0.0.1}:") >= 1, path.name
    assert "\nPUBLISH_ADDRESS=127.0.0.1\n" in (ROOT / ".env.example").read_text()
    # MLflow accepts the Host header of any published port on this machine
    assert "localhost:*,127.0.0.1,127.0.0.1:*" in " ".join(compose["services"]["mlflow"]["command"])


def test_every_airflow_service_shares_executor_database_broker_and_project_folders(compose):
    for name in AIRFLOW_SERVICES:
        service = compose["services"][name]
        env = service["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"].startswith("postgresql+psycopg2://"), name
        assert "@redis:6379/" in env["AIRFLOW__CELERY__BROKER_URL"], name
        assert env["MLFLOW_TRACKING_URI"] == "http://mlflow:5000", name
        mounts = {_mount_target(v) for v in service["volumes"]}
        assert {"/opt/airflow/dags", "/opt/airflow/plugins", "/opt/airflow/include", "/opt/airflow/logs",
                env["LLMOPS_HOME"]} <= mounts, name
        assert service["depends_on"]["postgres"]["condition"] == "service_healthy", name
    for folder in ("dags", "plugins", "include"):
        assert (ROOT / folder).is_dir()


def test_secrets_come_from_the_env_file_not_the_compose_file(compose):
    env = compose["services"]["airflow-scheduler"]["environment"]
    assert env["AIRFLOW__CORE__FERNET_KEY"] == "${AIRFLOW_FERNET_KEY:-}"
    assert env["AIRFLOW_ADMIN_PASSWORD"] == "${AIRFLOW_ADMIN_PASSWORD:-}"
    assert env["AIRFLOW__API_AUTH__JWT_SECRET"] == "${AIRFLOW_JWT_SECRET:-}"
    example = (ROOT / ".env.example").read_text()
    for name in ("AIRFLOW_FERNET_KEY", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY",
                 "POSTGRES_PASSWORD", "LLMOPS_API_KEYS", "LLMOPS_DEPLOYMENT_PROFILE", "AIRFLOW_UID", *MLFLOW_ACCOUNTS):
        assert f"\n{name}=" in "\n" + example, name
    # no working default ships for a secret: the database and MLflow passwords are filled in like the others
    for name in ("POSTGRES_PASSWORD", *(n for n in MLFLOW_ACCOUNTS if n.endswith("_PASSWORD"))):
        assert f"\n{name}=\n" in "\n" + example, name


def test_mlflow_uses_postgresql_and_an_artifact_volume(compose):
    mlflow = compose["services"]["mlflow"]
    args = " ".join(mlflow["command"])
    assert "--backend-store-uri=postgresql+psycopg2://" in args and "@postgres/mlflow" in args
    assert "--artifacts-destination=/mlflow/artifacts" in args
    assert "mlflow-artifacts:/mlflow/artifacts" in mlflow["volumes"]
    assert set(compose["volumes"]) >= {"postgres-db-volume", "mlflow-artifacts", "llmops-home"}
    init_sql = ROOT / "docker" / "postgres-init" / "10-mlflow-database.sql"
    assert "CREATE DATABASE mlflow" in init_sql.read_text()
    assert "./docker/postgres-init:/docker-entrypoint-initdb.d:ro" in compose["services"]["postgres"]["volumes"]


def test_the_image_installs_requirements_with_constraints_and_checks_secrets_at_start():
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    assert "FROM apache/airflow:${AIRFLOW_VERSION}" in dockerfile
    assert "-r /opt/llmops/requirements.txt" in dockerfile and "-c /opt/llmops/constraints.txt" in dockerfile
    assert "download.pytorch.org/whl/${TORCH_VARIANT}" in dockerfile
    assert "/opt/llmops/docker/entrypoint.sh" in dockerfile
    entrypoint = (ROOT / "docker" / "entrypoint.sh").read_text()
    assert "check_deployment_env.py" in entrypoint and "exec /entrypoint" in entrypoint


def _compose_cli() -> list[str] | None:
    if shutil.which("docker") and subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0:
        return ["docker", "compose"]
    return None


def test_docker_compose_config_accepts_the_file(tmp_path):
    cli = _compose_cli()
    if cli is None:
        pytest.skip("the docker compose plugin is not installed here; the file is checked by the tests above")
    env_file = tmp_path / ".env"
    env_file.write_text((ROOT / ".env.example").read_text())
    proc = subprocess.run([*cli, "--project-directory", str(ROOT), "--env-file", str(env_file), "-f", str(COMPOSE),
                           "config", "--quiet"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr


def test_the_serving_api_is_part_of_the_deployment():
    compose = yaml.safe_load((ROOT / "docker-compose.yaml").read_text())
    api = compose["services"]["llmops-api"]
    assert api["entrypoint"][-2:] == ["-m", "llmops.serving"] and api["ports"][0].endswith(":8000")
    assert api["environment"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"
    # the container probe uses the one route that needs no API key; the keys come from .env
    assert "/livez" in " ".join(api["healthcheck"]["test"])
    assert api["environment"]["LLMOPS_API_KEYS"] == "${LLMOPS_API_KEYS:-}"
    assert api["environment"]["LLMOPS_DEPLOYMENT_PROFILE"] == "${LLMOPS_DEPLOYMENT_PROFILE:-production}"


def test_mlflow_runs_its_basic_auth_app_with_the_accounts_from_env(compose):
    mlflow = compose["services"]["mlflow"]
    assert mlflow["entrypoint"][-2:] == ["python", "/opt/llmops/docker/mlflow_server.py"]
    args = mlflow["command"]
    assert args[0] == "server" and "--app-name=basic-auth" in args
    env = mlflow["environment"]
    assert env["MLFLOW_AUTH_DATABASE_URI"].endswith("@postgres/mlflow_auth")
    # no MLflow server jobs: their runner's processes would hold the server's start back on a small host
    assert env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] == "false"
    assert all(name in env for name in MLFLOW_ACCOUNTS)
    assert "CREATE DATABASE mlflow_auth" in (ROOT / "docker" / "postgres-init" / "10-mlflow-database.sql").read_text()
    assert "docker/mlflow_server.py" in (ROOT / "docker" / "Dockerfile").read_text()
    # Airflow's services (workers, scheduler, API server, batch jobs) log in as the service account
    for name in AIRFLOW_SERVICES:
        env = compose["services"][name]["environment"]
        assert env["MLFLOW_TRACKING_USERNAME"] == "${MLFLOW_SERVICE_USERNAME:-llmops}", name
        assert env["MLFLOW_TRACKING_PASSWORD"].startswith("${MLFLOW_SERVICE_PASSWORD:-"), name


def test_the_model_api_gets_its_own_mlflow_account_and_no_other_secret(compose):
    api = compose["services"]["llmops-api"]
    env = api["environment"]
    assert env["MLFLOW_TRACKING_USERNAME"] == "${MLFLOW_SERVING_USERNAME:-model-api}"
    assert env["MLFLOW_TRACKING_PASSWORD"].startswith("${MLFLOW_SERVING_PASSWORD:-")
    assert api["env_file"] == []  # not the whole .env: the other accounts' and the database's passwords stay out
    values = " ".join(str(v) for v in env.values())
    for secret in ("POSTGRES_PASSWORD", "AIRFLOW_FERNET_KEY", "AIRFLOW_JWT_SECRET", "AIRFLOW_ADMIN_PASSWORD",
                   "MLFLOW_SERVICE_PASSWORD", "MLFLOW_ADMIN_PASSWORD"):
        assert secret not in values, secret


def test_the_secrets_check_runs_before_postgresql_initialises_its_volume(compose):
    check = compose["services"]["deployment-check"]
    assert check["entrypoint"] == ["python", "/opt/llmops/docker/check_deployment_env.py"]
    assert "depends_on" not in check and "restart" not in check  # one-shot, first
    assert compose["services"]["postgres"]["depends_on"] == {
        "deployment-check": {"condition": "service_completed_successfully"}}
    # it sees what the others are given: Airflow's secrets, the database URL and every MLflow account
    env = check["environment"]
    for name in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN",
                 *MLFLOW_ACCOUNTS):
        assert name in env, name


def _resolved_env(tmp_path, service: str, **dotenv: str) -> dict[str, str] | None:
    """``service``'s environment as `docker compose config` resolves it for a production .env with ``dotenv``."""
    import json

    cli = _compose_cli()
    if cli is None:
        return None
    values = {"LLMOPS_DEPLOYMENT_PROFILE": "production",
              "AIRFLOW_FERNET_KEY": "3HwjoalBAgzRxuJZyntnvTzWEy5pDzQUoWvDzXMOGu0=",
              "AIRFLOW_JWT_SECRET": "j" * 32, "AIRFLOW_API_SECRET_KEY": "k" * 32,
              "AIRFLOW_ADMIN_PASSWORD": "a-long-admin-passphrase", "POSTGRES_PASSWORD": "a-long-db-passphrase",
              "LLMOPS_API_KEYS": "sk-test", **{n: f"{n.lower()}-value-1234" for n in MLFLOW_ACCOUNTS}, **dotenv}
    env_file = tmp_path / ".env"
    env_file.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    proc = subprocess.run([*cli, "--project-directory", str(ROOT), "--env-file", str(env_file), "-f", str(COMPOSE),
                           "config", "--format", "json"], capture_output=True, text=True, timeout=60,
                          env={"PATH": os.environ["PATH"], **{k: v for k, v in os.environ.items() if k.startswith(
                              ("DOCKER_", "CONTAINERS_", "COMPOSE_ENGINE"))}})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["services"][service]["environment"]


@pytest.mark.parametrize("dotenv,variable", [
    ({}, None),
    ({"LLMOPS_DEPLOYMENT_PROFILE": "dev", "MLFLOW_SERVICE_PASSWORD": "", "POSTGRES_PASSWORD": ""}, None),
    ({"MLFLOW_SERVICE_PASSWORD": ""}, "MLFLOW_SERVICE_PASSWORD"),
    ({"MLFLOW_SERVING_PASSWORD": ""}, "MLFLOW_SERVING_PASSWORD"),
    ({"MLFLOW_ADMIN_PASSWORD": "short"}, "MLFLOW_ADMIN_PASSWORD"),
    ({"POSTGRES_PASSWORD": ""}, "POSTGRES_PASSWORD"),
])
def test_up_refuses_an_empty_password_before_the_database_starts_naming_the_variable(tmp_path, dotenv, variable):
    """What `up` runs first (deployment-check, which PostgreSQL waits for), with the environment compose gives it."""
    env = _resolved_env(tmp_path, "deployment-check", **dotenv)
    if env is None:
        pytest.skip("the docker compose plugin is not installed here; the wiring is checked by the tests above")
    proc = subprocess.run([sys.executable, str(ROOT / "docker" / "check_deployment_env.py")], capture_output=True,
                          text=True, timeout=60, env={"PATH": os.environ["PATH"], **env})
    if variable is None:
        assert proc.returncode == 0, proc.stderr
    else:
        assert proc.returncode == 1 and variable in proc.stderr, proc.stderr
        assert "LLMOPS_DEPLOYMENT_PROFILE=dev" in proc.stderr
