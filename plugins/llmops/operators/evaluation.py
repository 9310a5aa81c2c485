"""evaluate -> gate: score base, champion and challenger on the same rows, then decide and write the report."""

from __future__ import annotations

from llmops.operators.base import UseCaseOperator
from llmops.operators.links import MLflowRunLink
from llmops.payloads import Evaluation, Trained


class EvaluateOperator(UseCaseOperator):
    """Base model, current champion and challenger on the same eval rows; metrics to MLflow, scores to a file."""

    payload_fields = ("trained",)
    ui_color = "#fdfbe8"
    operator_extra_links = (MLflowRunLink(),)

    def __init__(self, *, use_case: str, trained, **kwargs):
        super().__init__(use_case=use_case, **kwargs)
        self.trained = trained

    def run_step(self, context, cfg):
        from llmops.steps.evaluate import evaluate

        return evaluate(cfg, Trained.from_xcom(self.trained), run_id=context["run_id"])

    def lineage_inputs(self, result=None):  # the champion compared is found inside execute: only at COMPLETE
        from llmops.lineage import steps
        from llmops.operators import lineage

        trained = Trained.from_xcom(self.trained)
        return steps.evaluate_inputs(trained, lineage.snapshot_uri(self.config, trained.snapshot_id),
                                     lineage.registry_uri(), self.config.model_name, result)

    def lineage_outputs(self, result):
        from llmops.lineage import steps

        return steps.evaluate_outputs(result, Trained.from_xcom(self.trained))


class GateOperator(UseCaseOperator):
    """Apply the use case's gate rules and write the eval report. A rejection never fails the DAG."""

    payload_fields = ("evaluation", "trained")
    ui_color = "#fde8e8"

    def __init__(self, *, use_case: str, evaluation, trained, **kwargs):
        super().__init__(use_case=use_case, **kwargs)
        self.evaluation = evaluation
        self.trained = trained

    def run_step(self, context, cfg):
        from llmops.run_note import set_run_note
        from llmops.steps.gate import run_gate

        decision = run_gate(cfg, Evaluation.from_xcom(self.evaluation), Trained.from_xcom(self.trained),
                            run_id=context["run_id"])
        dag_run = context.get("dag_run")
        if dag_run is not None:
            set_run_note(dag_run.dag_id, dag_run.run_id, decision.text)
        return decision

    def lineage_inputs(self, result=None):
        from llmops.lineage import steps

        return steps.gate_inputs(Evaluation.from_xcom(self.evaluation))

    def lineage_outputs(self, result):
        from llmops.lineage import steps

        return steps.gate_outputs(result)
