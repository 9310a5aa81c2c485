"""Start the deployment's MLflow server with MLflow's basic-auth app and the deployment's four accounts.

The ``mlflow`` service's entrypoint (``python mlflow_server.py server --app-name=basic-auth ...``). Before it hands
over to ``mlflow`` it

1. refuses placeholder secrets like every other container (:mod:`check_deployment_env`, dev profile excepted);
2. creates the permissions database (``MLFLOW_AUTH_DATABASE_URI``) when the PostgreSQL volume predates it;
3. writes MLflow's auth config (``MLFLOW_AUTH_CONFIG_PATH``, mode 600): that database, the admin account and
   ``default_permission = NO_PERMISSIONS`` (an account nobody granted anything reads nothing);
4. makes the accounts, idempotently, and sets each one's password from the environment (changing a password in
   ``.env`` and restarting ``mlflow`` rotates it):

   - ``MLFLOW_ADMIN_*``: an MLflow admin (users, permissions, everything), for a person;
   - ``MLFLOW_SERVICE_*``: the pipeline (workers, scheduler, Airflow API, batch jobs): MANAGE on every experiment
     and registered model, those made later included (wildcard grants), but no user administration;
   - ``MLFLOW_READER_*``: people browsing the UI: READ on every experiment and registered model;
   - ``MLFLOW_SERVING_*``: the model API: READ, so it loads any version but cannot move an alias.

Every other setting is MLflow's own: ``python mlflow_server.py`` runs ``mlflow`` with the arguments it got.
"""

from __future__ import annotations

import os
import secrets
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_deployment_env import problems  # noqa: E402

# (variable prefix, MLflow admin?, wildcard permission on experiments and registered models)
ACCOUNTS = (("MLFLOW_ADMIN", True, None), ("MLFLOW_SERVICE", False, "MANAGE"),
            ("MLFLOW_READER", False, "READ"), ("MLFLOW_SERVING", False, "READ"))
RESOURCE_TYPES = ("experiment", "registered_model")
DEFAULT_CONFIG = "/tmp/mlflow-auth/basic_auth.ini"


def accounts(env: dict[str, str]) -> list[tuple[str, str, bool, str | None]]:
    """(username, password, admin, permission) per account; SystemExit naming the variable when one is unset or
    two accounts share a name."""
    found, names = [], {}
    for prefix, admin, permission in ACCOUNTS:
        user, password = env.get(f"{prefix}_USERNAME", "").strip(), env.get(f"{prefix}_PASSWORD", "")
        for variable, value in ((f"{prefix}_USERNAME", user), (f"{prefix}_PASSWORD", password)):
            if not value:
                raise SystemExit(f"refusing to start MLflow: {variable} is empty (set it in .env)")
        if user in names:
            raise SystemExit(f"refusing to start MLflow: {prefix}_USERNAME and {names[user]}_USERNAME are both "
                             f"'{user}': each account needs its own name")
        names[user] = prefix
        found.append((user, password, admin, permission))
    return found


def write_config(path: Path, database_uri: str, admin: str, admin_password: str) -> None:
    import configparser

    config = configparser.ConfigParser(interpolation=None)
    config["mlflow"] = {"default_permission": "NO_PERMISSIONS", "database_uri": database_uri,
                        "admin_username": admin, "admin_password": admin_password,
                        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
                        # a checked login is remembered for a minute per worker rather than hashed on every request
                        # (the pipeline's clients make many); passwords change with a restart, which clears it
                        "auth_cache_ttl_seconds": "60"}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        config.write(f)
    os.replace(tmp, path)


def ensure_database(database_uri: str) -> None:
    """Create the database of ``database_uri`` (PostgreSQL) when it does not exist yet."""
    import sqlalchemy

    parts = urlsplit(database_uri)
    name = parts.path.lstrip("/")
    if not parts.scheme.startswith("postgresql") or not name:
        return
    engine = sqlalchemy.create_engine(urlunsplit(parts._replace(path="/postgres")), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if conn.execute(sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first():
                return
            conn.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
            print(f"created the MLflow permissions database {name}", file=sys.stderr)
    finally:
        engine.dispose()


def ensure_accounts(database_uri: str, found: list[tuple[str, str, bool, str | None]]) -> None:
    """Each account exists with its password, admin flag and wildcard grants (upserts: safe on every start)."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    store = SqlAlchemyStore()
    store.init_db(database_uri)
    for user, password, admin, permission in found:
        if store.has_user(user, use_primary=True):
            store.update_user(user, password=password, is_admin=admin)
        else:
            store.create_user(user, password, is_admin=admin)
        if permission:
            for resource_type in RESOURCE_TYPES:
                store.grant_user_permission(user, resource_type, "*", permission)
    store.engine.dispose()


def main(argv: list[str]) -> int:
    env = dict(os.environ)
    found = problems(env)
    if found:
        print("refusing to start MLflow: " + "; ".join(found), file=sys.stderr)
        return 1
    database_uri = env.get("MLFLOW_AUTH_DATABASE_URI", "")
    if not database_uri:
        print("refusing to start MLflow: MLFLOW_AUTH_DATABASE_URI (the permissions database) is empty",
              file=sys.stderr)
        return 1
    users = accounts(env)
    config = Path(env.get("MLFLOW_AUTH_CONFIG_PATH") or DEFAULT_CONFIG)
    write_config(config, database_uri, users[0][0], users[0][1])
    ensure_database(database_uri)
    ensure_accounts(database_uri, users)
    print(f"MLflow accounts ready: {', '.join(u for u, *_ in users)}", file=sys.stderr)
    os.environ["MLFLOW_AUTH_CONFIG_PATH"] = str(config)
    # the UI's CSRF tokens: one key for all of this server's workers (a restart only asks browsers to reload a form)
    os.environ.setdefault("MLFLOW_FLASK_SERVER_SECRET_KEY", secrets.token_urlsafe(32))
    os.execvp("mlflow", ["mlflow", *argv])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
