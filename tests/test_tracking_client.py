"""One MLflow client per process and tracking store, not one per call."""

from __future__ import annotations

from llmops import paths, tracking


def test_the_same_store_gets_the_same_client_and_another_store_its_own(tmp_path, monkeypatch):
    first = tracking.client()
    assert tracking.client() is first
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'other.db'}")
    other = tracking.client()
    assert other is not first and other.tracking_uri == paths.tracking_uri()
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    assert tracking.client() is first


def test_mlflow_s_own_uris_follow_the_store_on_every_call(tmp_path, monkeypatch):
    import mlflow

    tracking.client()
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'other.db'}")
    tracking.client()
    assert mlflow.get_tracking_uri() == mlflow.get_registry_uri() == paths.tracking_uri()
