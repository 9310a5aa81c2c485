"""register: a new MLflow model version (adapter only) with lineage tags and aliases; skipped if the gate said no."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from llmops.operators.common import load_config, model_asset

log = logging.getLogger(__name__)


class RegisterOperator(BaseOperator):
    """Register the adapter when the gate passed; set `challenger`, and `champion` when promoted."""

    template_fields: Sequence[str] = ("use_case", "decision", "trained", "evaluation")
    ui_color = "#e8fdfb"

    def __init__(self, *, use_case: str, decision, trained, evaluation, **kwargs):
        kwargs.setdefault("outlets", [model_asset(use_case)])
        super().__init__(**kwargs)
        self.use_case = use_case
        self.decision = decision
        self.trained = trained
        self.evaluation = evaluation

    def execute(self, context):
        from llmops import registry, tracking
        from llmops.runs import record_step
        from llmops.train.model_io import adapter_metadata

        cfg = load_config(self.use_case)
        run_id = context["run_id"]
        if not self.decision["passed"]:
            record_step(self.use_case, run_id, "register", {"registered": False, "reasons": self.decision["reasons"]})
            tracking.end_run(self.trained["mlflow_run_id"])
            raise AirflowSkipException("gate rejected the adapter, nothing registered: "
                                       + "; ".join(self.decision["reasons"]))
        mlflow_run = self.trained["mlflow_run_id"]
        tracking.log_artifacts(mlflow_run, self.trained["adapter_dir"], "adapter")
        meta = adapter_metadata(self.trained["adapter_dir"])
        tuned = self.evaluation["metrics"]["tuned"]
        tags = {k: meta[k] for k in ("snapshot_id", "dag_run_id", "base_model", "base_model_revision",
                                     "prompt_template_hash", "config_hash", "code_version")}
        tags.update({f"metric.{k}": f"{tuned[k]:.6g}" for k in ("eval_loss", "perplexity", "exact_match", "token_f1")})
        tags["use_case"] = self.use_case
        result = registry.register_adapter(
            cfg.model_name, run_id=mlflow_run, artifact_path="adapter", tags=tags,
            promote=cfg.gate.promote_to_champion, description=cfg.description,
        )
        tracking.end_run(mlflow_run)
        context["outlet_events"][model_asset(self.use_case)].extra = {
            "name": result["name"], "version": result["version"], "aliases": result["aliases"],
        }
        record_step(self.use_case, run_id, "register", {"registered": True, **result})
        log.info("registered %s version %s with aliases %s", result["name"], result["version"], result["aliases"])
        return result
