"""Refuse to start a deployment with placeholder secrets; write the API login from the environment.

Run by docker/entrypoint.sh in every Airflow container before Airflow's own entrypoint. Outside the dev profile
(``LLMOPS_DEPLOYMENT_PROFILE=dev``) an empty or malformed Fernet key, a missing API/JWT secret, an empty or
default admin password, an empty or default metadata-database password (``POSTGRES_PASSWORD``, read from the
connection URL), or an empty, default or short password of an MLflow account (those the container is given:
``MLFLOW_*_PASSWORD``, and ``MLFLOW_TRACKING_PASSWORD``, the service account's) stops the container with a message
naming the variable to set in ``.env``. docker-compose.yaml also runs it as the one-shot ``deployment-check``
service, which PostgreSQL waits for: a placeholder never initialises the database volume.

``python check_deployment_env.py`` exits 1 listing every problem; with ``--write-passwords FILE`` it also writes
the simple auth manager's passwords file (``{"<user>": "<password>"}``) atomically.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sys
from pathlib import Path
from urllib.parse import unquote, urlsplit

DEV_PROFILE = "dev"
# docker-compose.yaml's fallback for the MLflow accounts (the dev profile only) is a default like the others
DEV_MLFLOW_PASSWORD = "dev-only-mlflow-password"
DEFAULT_PASSWORDS = {"", "admin", "airflow", "password", "changeme", "change-me", DEV_MLFLOW_PASSWORD}
SECRETS = {
    "AIRFLOW__API_AUTH__JWT_SECRET": "AIRFLOW_JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY": "AIRFLOW_API_SECRET_KEY",
}
# MLflow's accounts (docker/mlflow_server.py): the variable a container sees -> the one to set in .env
MLFLOW_PASSWORDS = {
    "MLFLOW_ADMIN_PASSWORD": "MLFLOW_ADMIN_PASSWORD",
    "MLFLOW_SERVICE_PASSWORD": "MLFLOW_SERVICE_PASSWORD",
    "MLFLOW_READER_PASSWORD": "MLFLOW_READER_PASSWORD",
    "MLFLOW_SERVING_PASSWORD": "MLFLOW_SERVING_PASSWORD",
    "MLFLOW_TRACKING_PASSWORD": "MLFLOW_SERVICE_PASSWORD",
}
MIN_PASSWORD = 12  # MLflow's own minimum for its accounts


def _fernet_ok(key: str) -> bool:
    try:
        return len(base64.urlsafe_b64decode(key.encode())) == 32
    except (binascii.Error, ValueError):
        return False


def problems(env: dict[str, str]) -> list[str]:
    """Everything wrong with this environment for a non-dev deployment (empty list: fine, or the dev profile)."""
    profile = env.get("LLMOPS_DEPLOYMENT_PROFILE", "production").strip().lower()
    if profile == DEV_PROFILE:
        return []
    found = []
    fernet = env.get("AIRFLOW__CORE__FERNET_KEY", "").strip()
    if not fernet:
        found.append("AIRFLOW__CORE__FERNET_KEY is empty: set AIRFLOW_FERNET_KEY in .env (python -c \"from "
                     "cryptography.fernet import Fernet; print(Fernet.generate_key().decode())\")")
    elif not all(_fernet_ok(k.strip()) for k in fernet.split(",")):
        found.append("AIRFLOW__CORE__FERNET_KEY is not a valid Fernet key (32 url-safe base64-encoded bytes)")
    password = env.get("AIRFLOW_ADMIN_PASSWORD", "")
    if password.strip().lower() in DEFAULT_PASSWORDS:
        found.append("AIRFLOW_ADMIN_PASSWORD is empty or a default password: set a strong one in .env")
    elif len(password) < 12:
        found.append("AIRFLOW_ADMIN_PASSWORD is shorter than 12 characters")
    for variable, dotenv_name in SECRETS.items():
        if len(env.get(variable, "").strip()) < 16:
            found.append(f"{variable} is empty or shorter than 16 characters: set {dotenv_name} in .env")
    conn = env.get("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "")
    if conn and unquote(urlsplit(conn).password or "").strip().lower() in DEFAULT_PASSWORDS:
        found.append("the metadata database password in AIRFLOW__DATABASE__SQL_ALCHEMY_CONN is empty or a default: "
                     "set POSTGRES_PASSWORD in .env (python -c \"import secrets; print(secrets.token_urlsafe(24))\"; "
                     "before the first `up`: the database volume keeps the password it was created with)")
    for variable, dotenv_name in MLFLOW_PASSWORDS.items():
        if variable not in env:  # not given to this container
            continue
        value = env[variable]
        if value.strip().lower() in DEFAULT_PASSWORDS or len(value) < MIN_PASSWORD:
            found.append(f"{variable} is empty, a default or shorter than {MIN_PASSWORD} characters: set "
                         f"{dotenv_name} in .env (python -c \"import secrets; print(secrets.token_urlsafe(24))\")")
    return [f"{msg} (profile '{profile}'; LLMOPS_DEPLOYMENT_PROFILE=dev allows this on a laptop)" for msg in found]


def write_passwords(path: Path, env: dict[str, str]) -> None:
    user = env.get("AIRFLOW_ADMIN_USERNAME", "admin")
    password = env.get("AIRFLOW_ADMIN_PASSWORD") or "admin"  # only reachable in the dev profile
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps({user: password}))
    tmp.chmod(0o600)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    env = dict(os.environ)
    found = problems(env)
    if found:
        print("refusing to start: " + "; ".join(found), file=sys.stderr)
        for msg in found:
            print(f"  - {msg}", file=sys.stderr)
        return 1
    if argv[:1] == ["--write-passwords"] and len(argv) == 2:
        write_passwords(Path(argv[1]), env)
    return 0


if __name__ == "__main__":
    sys.exit(main())
