"""docker/mlflow_server.py: MLflow's auth config and the deployment's accounts, made idempotently before the server
starts (against a SQLite permissions database here; the compose stack test runs it on PostgreSQL)."""

from __future__ import annotations

import configparser
import importlib.util
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "docker" / "mlflow_server.py"
ENV = {f"MLFLOW_{who}_USERNAME": name for who, name in (("ADMIN", "admin"), ("SERVICE", "llmops"),
                                                         ("READER", "reader"), ("SERVING", "model-api"))}
ENV.update({f"MLFLOW_{who}_PASSWORD": f"{who.lower()}-passphrase-1" for who in ("ADMIN", "SERVICE", "READER",
                                                                               "SERVING")})


@pytest.fixture(scope="module")
def server():
    sys.path.insert(0, str(SCRIPT.parent))
    spec = importlib.util.spec_from_file_location("mlflow_server", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("change,message", [
    ({"MLFLOW_SERVING_PASSWORD": ""}, "MLFLOW_SERVING_PASSWORD is empty"),
    ({"MLFLOW_READER_USERNAME": ""}, "MLFLOW_READER_USERNAME is empty"),
    ({"MLFLOW_SERVING_USERNAME": "llmops"}, "MLFLOW_SERVING_USERNAME and MLFLOW_SERVICE_USERNAME are both 'llmops'"),
])
def test_an_unset_or_shared_account_name_stops_the_start(server, change, message):
    with pytest.raises(SystemExit, match=message):
        server.accounts({**ENV, **change})


def test_the_auth_config_is_written_for_the_admin_and_readable_only_by_its_owner(server, tmp_path):
    path = tmp_path / "auth" / "basic_auth.ini"
    server.write_config(path, "sqlite:///x.db", "admin", "pa%ss-with-percent")
    config = configparser.ConfigParser(interpolation=None)
    config.read(path)
    assert dict(config["mlflow"]) == {"default_permission": "NO_PERMISSIONS", "database_uri": "sqlite:///x.db",
                                      "admin_username": "admin", "admin_password": "pa%ss-with-percent",
                                      "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
                                      "auth_cache_ttl_seconds": "60"}
    assert path.stat().st_mode & 0o077 == 0


def test_accounts_are_made_once_and_take_new_passwords_on_the_next_start(server, tmp_path):
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    uri = f"sqlite:///{tmp_path / 'auth.db'}"
    server.ensure_accounts(uri, server.accounts(ENV))
    rotated = {**ENV, "MLFLOW_SERVING_PASSWORD": "a-new-serving-passphrase"}
    server.ensure_accounts(uri, server.accounts(rotated))  # a restart with a changed .env
    store = SqlAlchemyStore()
    store.init_db(uri)
    users = {u.username: u for u in store.list_users()}
    assert set(users) == {"admin", "llmops", "reader", "model-api"}
    assert [n for n, u in users.items() if u.is_admin] == ["admin"]
    assert store.authenticate_user("model-api", "a-new-serving-passphrase")
    assert not store.authenticate_user("model-api", ENV["MLFLOW_SERVING_PASSWORD"])
    assert store.authenticate_user("llmops", ENV["MLFLOW_SERVICE_PASSWORD"])
    # the pipeline manages, the others read: every experiment and registered model, those made later included
    for user, want in (("llmops", "MANAGE"), ("reader", "READ"), ("model-api", "READ")):
        grants = store.list_grants(users[user].id, "default", {"experiment", "registered_model"})
        assert sorted((g.resource_type, g.resource_pattern, g.permission) for g in grants) == [
            ("experiment", "*", want), ("registered_model", "*", want)], user
    store.engine.dispose()
