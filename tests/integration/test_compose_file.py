"""docker-compose.yaml: the official Airflow 3 shape with Celery workers for `default` and `gpu` and MLflow.

No Docker engine is needed: the file is parsed and checked here; `docker compose config` also validates it
where the compose plugin is installed (it needs no running engine). test_compose_stack.py runs it for real.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yaml"
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


def test_published_ports_take_an_address_and_a_port_from_env(compose):
    for name, port in (("airflow-apiserver", "${AIRFLOW_PORT:-8080}:8080"), ("mlflow", "${MLFLOW_PORT:-5000}:5000"),
                       ("llmops-api", "${LLMOPS_API_PORT:-8000}:8000")):
        assert compose["services"][name]["ports"] == [f"${{PUBLISH_ADDRESS:-0.0.0.0}}:{port}"], name
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
                 "POSTGRES_PASSWORD", "LLMOPS_API_KEYS", "LLMOPS_DEPLOYMENT_PROFILE", "AIRFLOW_UID"):
        assert f"\n{name}=" in "\n" + example, name
    # no working default ships for a secret: the database password is filled in like the others
    assert "\nPOSTGRES_PASSWORD=\n" in "\n" + example


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
