"""docker/check_deployment_env.py: placeholder secrets stop a deployment unless it is the dev profile."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "check_deployment_env.py"
FERNET = "3HwjoalBAgzRxuJZyntnvTzWEy5pDzQUoWvDzXMOGu0="
GOOD = {"AIRFLOW__CORE__FERNET_KEY": FERNET, "AIRFLOW_ADMIN_PASSWORD": "a-long-and-unique-passphrase",
        "AIRFLOW__API_AUTH__JWT_SECRET": "x" * 32, "AIRFLOW__API__SECRET_KEY": "y" * 32,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://airflow:Zq3-long-db-secret@postgres/airflow"}


@pytest.fixture(scope="module")
def check():
    spec = importlib.util.spec_from_file_location("check_deployment_env", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_complete_environment_passes(check):
    assert check.problems(GOOD) == []


@pytest.mark.parametrize("change,variable", [
    ({"AIRFLOW__CORE__FERNET_KEY": ""}, "AIRFLOW__CORE__FERNET_KEY is empty"),
    ({"AIRFLOW__CORE__FERNET_KEY": "not-a-key"}, "not a valid Fernet key"),
    ({"AIRFLOW_ADMIN_PASSWORD": ""}, "AIRFLOW_ADMIN_PASSWORD"),
    ({"AIRFLOW_ADMIN_PASSWORD": "admin"}, "AIRFLOW_ADMIN_PASSWORD"),
    ({"AIRFLOW_ADMIN_PASSWORD": "airflow"}, "AIRFLOW_ADMIN_PASSWORD"),
    ({"AIRFLOW_ADMIN_PASSWORD": "short1"}, "shorter than 12"),
    ({"AIRFLOW__API_AUTH__JWT_SECRET": ""}, "AIRFLOW_JWT_SECRET"),
    # docker-compose.yaml's fallback when .env sets no POSTGRES_PASSWORD, and an empty one
    ({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://airflow:airflow@postgres/airflow"},
     "POSTGRES_PASSWORD"),
    ({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://airflow:@postgres/airflow"}, "POSTGRES_PASSWORD"),
    # MLflow's accounts, where the container is given them: empty, docker-compose.yaml's dev fallback, too short
    ({"MLFLOW_TRACKING_PASSWORD": ""}, "set MLFLOW_SERVICE_PASSWORD in .env"),
    ({"MLFLOW_SERVICE_PASSWORD": "dev-only-mlflow-password"}, "MLFLOW_SERVICE_PASSWORD"),
    ({"MLFLOW_ADMIN_PASSWORD": "admin"}, "MLFLOW_ADMIN_PASSWORD"),
    ({"MLFLOW_READER_PASSWORD": "short-pw"}, "MLFLOW_READER_PASSWORD"),
    ({"MLFLOW_SERVING_PASSWORD": ""}, "MLFLOW_SERVING_PASSWORD"),
])
def test_placeholders_are_refused_outside_the_dev_profile(check, change, variable):
    for profile in ({}, {"LLMOPS_DEPLOYMENT_PROFILE": "production"}, {"LLMOPS_DEPLOYMENT_PROFILE": "staging"}):
        found = check.problems({**GOOD, **change, **profile})
        assert len(found) == 1 and variable in found[0], found


def test_the_dev_profile_allows_an_empty_key_and_the_default_password(check):
    env = {"LLMOPS_DEPLOYMENT_PROFILE": "dev", "AIRFLOW_ADMIN_PASSWORD": "admin",
           "MLFLOW_TRACKING_PASSWORD": "dev-only-mlflow-password", "MLFLOW_ADMIN_PASSWORD": ""}
    assert check.problems(env) == []


def test_mlflow_passwords_are_checked_only_where_the_container_is_given_them(check):
    assert check.problems(GOOD) == []  # an Airflow container without the MLflow admin's variables
    good = {f"MLFLOW_{who}_PASSWORD": f"a-long-{who.lower()}-passphrase" for who in ("ADMIN", "SERVICE", "READER",
                                                                                     "SERVING", "TRACKING")}
    assert check.problems({**GOOD, **good}) == []


def _run(env: dict, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *args], env={"PATH": "/usr/bin:/bin", **env},
                          capture_output=True, text=True, timeout=60)


def test_the_script_exits_non_zero_naming_every_problem_and_writes_nothing(tmp_path):
    passwords = tmp_path / "passwords.json"
    proc = _run({"AIRFLOW_ADMIN_PASSWORD": "admin"}, "--write-passwords", str(passwords))
    assert proc.returncode == 1
    for name in ("AIRFLOW__CORE__FERNET_KEY", "AIRFLOW_ADMIN_PASSWORD", "AIRFLOW_JWT_SECRET", "AIRFLOW_API_SECRET_KEY"):
        assert name in proc.stderr
    assert "LLMOPS_DEPLOYMENT_PROFILE=dev" in proc.stderr
    assert not passwords.exists()


def test_the_script_writes_the_login_for_the_simple_auth_manager(tmp_path):
    passwords = tmp_path / "config" / "passwords.json"
    proc = _run({**GOOD, "AIRFLOW_ADMIN_USERNAME": "ops"}, "--write-passwords", str(passwords))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(passwords.read_text()) == {"ops": GOOD["AIRFLOW_ADMIN_PASSWORD"]}
    assert passwords.stat().st_mode & 0o077 == 0
