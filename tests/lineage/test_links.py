"""Links to what a task produced: MLflow UI pages and pages of the LLMOps view; no credential in a URL."""

from __future__ import annotations

from llmops import links


def test_mlflow_links_use_the_ui_url_or_the_tracking_server(monkeypatch):
    monkeypatch.delenv("LLMOPS_MLFLOW_UI_URL", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlite:////srv/mlflow.db")
    assert links.mlflow_run("abc") == "http://localhost:5000/#/runs/abc"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://bot:s3cret@mlflow.example.com/")
    assert links.model_version("qa-lora", 3) == "https://mlflow.example.com/#/models/qa-lora/versions/3"
    monkeypatch.setenv("LLMOPS_MLFLOW_UI_URL", "https://mlflow.internal/")
    assert links.mlflow_run("abc") == "https://mlflow.internal/#/runs/abc"


def test_view_links_are_under_the_airflow_base_url():
    run = "manual__2026-11-25T02:50:41.626453+00:00"
    assert links.validation_report("qa", run) == \
        "/llmops/use-cases/qa/runs/manual__2026-11-25T02%3A50%3A41.626453%2B00%3A00/validation"
    assert links.snapshot_manifest("qa", "abc", "http://airflow:8080/") == \
        "http://airflow:8080/llmops/use-cases/qa/snapshots/abc/manifest"
    assert links.dag_run("qa__dataset", run, "http://a") == \
        "http://a/dags/qa__dataset/runs/manual__2026-11-25T02%3A50%3A41.626453%2B00%3A00"
