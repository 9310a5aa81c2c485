"""Extra links on our tasks (buttons in the task instance's page): built from the task's XCom when it finishes.

Airflow 3 renders them in the task process at the end of a run and stores them as XCom ``_link_<class>``.
"""

from __future__ import annotations

from airflow.sdk import BaseOperatorLink

from llmops import links


def _result(ti_key) -> dict:
    from airflow.providers.common.compat.sdk import XCom

    return XCom.get_value(ti_key=ti_key, key="return_value") or {}


def _base_url() -> str:
    from airflow.providers.common.compat.sdk import conf

    return conf.get("api", "base_url", fallback="") or ""


class MLflowRunLink(BaseOperatorLink):
    """The MLflow run of this DAG run (finetune, evaluate)."""

    name = "MLflow run"

    def get_link(self, operator, *, ti_key) -> str:
        run = _result(ti_key).get("mlflow_run_id") or (getattr(operator, "trained", None) or {}).get("mlflow_run_id")
        return links.mlflow_run(run) if run else ""


class ModelVersionLink(BaseOperatorLink):
    """The model version `register` made (empty when the gate rejected and nothing was registered)."""

    name = "Model version"

    def get_link(self, operator, *, ti_key) -> str:
        result = _result(ti_key)
        return links.model_version(result["name"], result["version"]) if result.get("version") else ""


class ValidationReportLink(BaseOperatorLink):
    """The great-expectations report of this run, in the LLMOps view."""

    name = "Validation report"

    def get_link(self, operator, *, ti_key) -> str:
        if not _result(ti_key).get("report"):
            return ""
        return links.validation_report(operator.use_case, ti_key.run_id, _base_url())


class SnapshotManifestLink(BaseOperatorLink):
    """The manifest of the snapshot this run wrote (or found already written), in the LLMOps view."""

    name = "Snapshot manifest"

    def get_link(self, operator, *, ti_key) -> str:
        sid = _result(ti_key).get("snapshot_id")
        return links.snapshot_manifest(operator.use_case, sid, _base_url()) if sid else ""
