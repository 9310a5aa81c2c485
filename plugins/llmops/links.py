"""Where a person opens what a task produced: the MLflow UI (runs, model versions) and the LLMOps view inside the
Airflow UI (validation reports, snapshot manifests). Plain functions over ids; the operator links call them.

``LLMOPS_MLFLOW_UI_URL`` is the MLflow UI as a browser reaches it (default: the tracking URI when it is an
``http(s)`` server, else ``http://localhost:5000``, what ``make mlflow`` serves). The LLMOps view lives under
Airflow's own base URL (``[api] base_url``) at :data:`VIEW_PREFIX`.
"""

from __future__ import annotations

import os
from urllib.parse import quote

from llmops.lineage.naming import redact_uri

VIEW_PREFIX = "/llmops"


def mlflow_ui(tracking_uri: str | None = None) -> str:
    explicit = os.environ.get("LLMOPS_MLFLOW_UI_URL")
    if explicit:
        return explicit.rstrip("/")
    uri = tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or ""
    if uri.startswith(("http://", "https://")):
        return redact_uri(uri).rstrip("/")
    return "http://localhost:5000"


def mlflow_run(run_id: str, tracking_uri: str | None = None) -> str:
    return f"{mlflow_ui(tracking_uri)}/#/runs/{quote(run_id)}"


def model_version(name: str, version: str | int, tracking_uri: str | None = None) -> str:
    return f"{mlflow_ui(tracking_uri)}/#/models/{quote(name)}/versions/{quote(str(version))}"


def view(path: str, base_url: str = "") -> str:
    """A page of the LLMOps view, absolute when Airflow's base URL is known."""
    return f"{(base_url or '').rstrip('/')}{VIEW_PREFIX}/{path.lstrip('/')}"


def validation_report(use_case: str, run_id: str, base_url: str = "") -> str:
    return view(f"use-cases/{quote(use_case)}/runs/{quote(run_id, safe='')}/validation", base_url)


def snapshot_manifest(use_case: str, snapshot_id: str, base_url: str = "") -> str:
    return view(f"use-cases/{quote(use_case)}/snapshots/{quote(snapshot_id)}/manifest", base_url)


def dag_run(dag_id: str, run_id: str, base_url: str = "") -> str:
    """A DAG run in the Airflow UI."""
    return f"{(base_url or '').rstrip('/')}/dags/{quote(dag_id)}/runs/{quote(run_id, safe='')}"
