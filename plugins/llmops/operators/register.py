"""register: a new MLflow model version (adapter only) with lineage tags and aliases; skipped if the gate (or a
person) said no. rollback: move `champion` back. Both emit the model Asset event that downstream DAGs follow."""

from __future__ import annotations

from llmops.operators.base import UseCaseOperator
from llmops.operators.common import model_asset
from llmops.operators.links import ModelVersionLink
from llmops.payloads import Decision, Evaluation, Trained


class RegisterOperator(UseCaseOperator):
    """Register the adapter when the gate passed (and a person approved, if asked); set the aliases."""

    payload_fields = ("decision", "trained", "evaluation", "approval")
    ui_color = "#e8fdfb"
    operator_extra_links = (ModelVersionLink(),)

    def __init__(self, *, use_case: str, decision, trained, evaluation, approval=None, **kwargs):
        kwargs.setdefault("outlets", [model_asset(use_case)])
        super().__init__(use_case=use_case, **kwargs)
        self.decision = decision
        self.trained = trained
        self.evaluation = evaluation
        self.approval = approval

    def run_step(self, context, cfg):
        from llmops.steps.register import register

        # a model or version the registry refuses fails for good; an unreachable server is retried
        result = register(cfg, Trained.from_xcom(self.trained), Evaluation.from_xcom(self.evaluation),
                          Decision.from_xcom(self.decision), self.approval, run_id=context["run_id"])
        context["outlet_events"][model_asset(self.use_case)].extra = {
            "name": result.name, "version": result.version, "alias": result.alias, "aliases": result.aliases,
        }
        return result

    def lineage_inputs(self, result=None):
        from llmops.lineage import steps
        from llmops.operators import lineage

        trained = Trained.from_xcom(self.trained)
        return steps.register_inputs(trained, lineage.snapshot_uri(self.config, trained.snapshot_id))

    def lineage_outputs(self, result):
        from llmops.lineage import steps
        from llmops.operators import lineage

        return steps.register_outputs(result, Trained.from_xcom(self.trained), lineage.registry_uri())


class RollbackOperator(UseCaseOperator):
    """Move `champion` back to a chosen version (empty: the `previous` alias) and emit the model Asset event."""

    other_template_fields = ("version", "reason")
    ui_color = "#fdebd0"

    def __init__(self, *, use_case: str, version: str | None = None, reason: str = "", **kwargs):
        kwargs.setdefault("outlets", [model_asset(use_case)])
        super().__init__(use_case=use_case, **kwargs)
        self.version = version
        self.reason = reason

    def run_step(self, context, cfg):
        from llmops.steps.rollback import rollback

        result = rollback(cfg, self.version, reason=self.reason or f"DAG run {context['run_id']}")
        context["outlet_events"][model_asset(self.use_case)].extra = {
            "name": result.name, "version": result.version, "alias": "champion", "rollback": True,
        }
        return result

    def lineage_inputs(self, result=None):
        from llmops.lineage import steps
        from llmops.operators import lineage

        return steps.rollback_inputs(result, lineage.registry_uri())

    def lineage_outputs(self, result):
        from llmops.lineage import steps
        from llmops.operators import lineage

        return steps.rollback_outputs(result, lineage.registry_uri())
