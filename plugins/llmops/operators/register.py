"""register: a new MLflow model version (adapter only) with lineage tags and aliases; skipped if the gate (or a
person) said no. rollback: move `champion` back. Both emit the model Asset event that downstream DAGs follow."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowSkipException

from llmops.operators.common import fail_without_retry, load_config, model_asset
from llmops.operators.lineage import ReportsLineage
from llmops.operators.links import ModelVersionLink
from llmops.payloads import Decision, Evaluation, Trained

log = logging.getLogger(__name__)


class RegisterOperator(ReportsLineage, BaseOperator):
    """Register the adapter when the gate passed (and a person approved, if asked); set the aliases."""

    template_fields: Sequence[str] = ("use_case", "decision", "trained", "evaluation", "approval")
    ui_color = "#e8fdfb"
    operator_extra_links = (ModelVersionLink(),)

    def __init__(self, *, use_case: str, decision, trained, evaluation, approval=None, **kwargs):
        kwargs.setdefault("outlets", [model_asset(use_case)])
        super().__init__(**kwargs)
        self.use_case = use_case
        self.decision = decision
        self.trained = trained
        self.evaluation = evaluation
        self.approval = approval

    def execute(self, context):
        from llmops import tracking
        from llmops.registration import refusal_reasons, register_trained
        from llmops.runs import record_step

        cfg = load_config(self.use_case)
        run_id = context["run_id"]
        trained, decision = Trained.from_xcom(self.trained), Decision.from_xcom(self.decision)
        reasons = refusal_reasons(decision)
        if reasons:
            record_step(self.use_case, run_id, "register", {"registered": False, "reasons": reasons})
            tracking.end_run(trained.mlflow_run_id)
            raise AirflowSkipException("not registered, champion unchanged: " + "; ".join(reasons))
        with fail_without_retry():  # a model or version the registry refuses (an unreachable server is retried)
            result = register_trained(cfg, trained, Evaluation.from_xcom(self.evaluation), decision, self.approval)
        context["outlet_events"][model_asset(self.use_case)].extra = {
            "name": result["name"], "version": result["version"], "alias": result["alias"],
            "aliases": result["aliases"],
        }
        record_step(self.use_case, run_id, "register", {"registered": True, **result})
        log.info("registered %s version %s with aliases %s", result["name"], result["version"], result["aliases"])
        return result

    def lineage_of(self, result):
        from llmops.lineage import steps
        from llmops.operators import lineage

        return steps.register(result, self.trained,
                              lineage.trained_snapshot_uri(self.use_case, self.trained),
                              lineage.registry_uri())

    def inputs_at_start(self):
        from llmops.lineage import steps
        from llmops.operators import lineage

        return steps.register({"name": "", "version": ""}, self.trained,
                              lineage.trained_snapshot_uri(self.use_case, self.trained),
                              lineage.registry_uri()).inputs


class RollbackOperator(ReportsLineage, BaseOperator):
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
        from llmops import names, registry

        cfg = load_config(self.use_case)
        with fail_without_retry():  # a version of the wrong shape, or one that does not exist
            wanted = str(self.version or "").strip()
            wanted = names.version(wanted, "params.version") if wanted else None
            result = registry.rollback(cfg.model_name, wanted, reason=self.reason or f"DAG run {context['run_id']}")
        context["outlet_events"][model_asset(self.use_case)].extra = {
            "name": result["name"], "version": result["version"], "alias": "champion", "rollback": True,
        }
        log.info("champion of %s: version %s -> %s", result["name"], result["from_version"], result["version"])
        return result

    def lineage_of(self, result):
        from llmops.lineage import steps
        from llmops.operators import lineage

        return steps.rollback(result, lineage.registry_uri())
