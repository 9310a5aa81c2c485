"""register: a new MLflow model version (adapter only) with lineage tags and aliases; skipped if the gate (or a
person) said no. rollback: move `champion` back. Both emit the model Asset event that downstream DAGs follow."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from llmops.operators.common import load_config, model_asset

log = logging.getLogger(__name__)
TAG_METRICS = ("eval_loss", "perplexity", "exact_match", "token_f1", "rouge_l", "unsafe_rate", "recitation_rate")


def _approved(approval) -> bool | None:
    """None: no approval step ran; else whether the person chose Approve."""
    if not approval:
        return None
    return list(approval.get("chosen_options") or []) == ["Approve"]


class RegisterOperator(BaseOperator):
    """Register the adapter when the gate passed (and a person approved, if asked); set the aliases."""

    template_fields: Sequence[str] = ("use_case", "decision", "trained", "evaluation", "approval")
    ui_color = "#e8fdfb"

    def __init__(self, *, use_case: str, decision, trained, evaluation, approval=None, **kwargs):
        kwargs.setdefault("outlets", [model_asset(use_case)])
        super().__init__(**kwargs)
        self.use_case = use_case
        self.decision = decision
        self.trained = trained
        self.evaluation = evaluation
        self.approval = approval

    def execute(self, context):
        from llmops import registry, tracking
        from llmops.runs import record_step
        from llmops.train.model_io import adapter_metadata

        cfg = load_config(self.use_case)
        run_id = context["run_id"]
        mlflow_run = self.trained["mlflow_run_id"]
        reasons = [] if self.decision["passed"] else [r["reason"] for r in self.decision["rules"] if not r["passed"]] or [
            "no gate rules (fail-closed)"]
        if self.decision["passed"] and _approved(self.approval) is False:
            reasons = [f"approval: {self.approval.get('chosen_options')} by {self.approval.get('responded_by_user')}"]
        if reasons:
            record_step(self.use_case, run_id, "register", {"registered": False, "reasons": reasons})
            tracking.end_run(mlflow_run)
            raise AirflowSkipException("not registered, champion unchanged: " + "; ".join(reasons))
        tracking.log_artifacts(mlflow_run, self.trained["adapter_dir"], "adapter")
        meta = adapter_metadata(self.trained["adapter_dir"])
        challenger = self.evaluation["metrics"]["challenger"]
        tags = {k: meta.get(k, "") for k in ("snapshot_id", "dag_run_id", "base_model", "base_model_revision",
                                             "prompt_template_hash", "config_hash", "code_version")}
        tags.update({f"metric.{k}": f"{challenger[k]:.6g}" for k in TAG_METRICS if k in challenger})
        tags.update({"use_case": self.use_case, "gate.reference": self.decision.get("reference", ""),
                     "gate.compared_champion": self.evaluation.get("champion_version") or "",
                     "eval_report": self.decision.get("report_artifact", "")})
        if self.approval:
            tags["approved_by"] = str(self.approval.get("responded_by_user"))
        result = registry.register_adapter(
            cfg.model_name, run_id=mlflow_run, artifact_path="adapter", tags=tags,
            promote=cfg.gate.promote_to_champion, description=cfg.description,
        )
        tracking.end_run(mlflow_run)
        context["outlet_events"][model_asset(self.use_case)].extra = {
            "name": result["name"], "version": result["version"], "alias": result["alias"],
            "aliases": result["aliases"],
        }
        record_step(self.use_case, run_id, "register", {"registered": True, **result})
        log.info("registered %s version %s with aliases %s", result["name"], result["version"], result["aliases"])
        return result


class RollbackOperator(BaseOperator):
    """Move `champion` back to a chosen version (empty: the `previous` alias) and emit the model Asset event."""

    template_fields: Sequence[str] = ("use_case", "version", "reason")
    ui_color = "#fdebd0"

    def __init__(self, *, use_case: str, version: str | None = None, reason: str = "", **kwargs):
        kwargs.setdefault("outlets", [model_asset(use_case)])
        super().__init__(**kwargs)
        self.use_case = use_case
        self.version = version
        self.reason = reason

    def execute(self, context):
        from llmops import registry

        cfg = load_config(self.use_case)
        try:
            result = registry.rollback(cfg.model_name, str(self.version or "").strip() or None,
                                       reason=self.reason or f"DAG run {context['run_id']}")
        except registry.RegistryError as e:
            raise AirflowFailException(str(e)) from None
        context["outlet_events"][model_asset(self.use_case)].extra = {
            "name": result["name"], "version": result["version"], "alias": "champion", "rollback": True,
        }
        log.info("champion of %s: version %s -> %s", result["name"], result["from_version"], result["version"])
        return result
