"""evaluate -> gate: score base and tuned model on the snapshot's eval split, then decide."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from airflow.sdk import BaseOperator

from llmops.operators.common import fail_without_retry, load_config

log = logging.getLogger(__name__)


class EvaluateOperator(BaseOperator):
    """Eval loss, perplexity, exact match and token F1 for the base model and the adapter, logged to MLflow."""

    template_fields: Sequence[str] = ("use_case", "trained")
    ui_color = "#fdfbe8"

    def __init__(self, *, use_case: str, trained, **kwargs):
        super().__init__(**kwargs)
        self.use_case = use_case
        self.trained = trained

    def execute(self, context):
        from llmops import paths, tracking
        from llmops.data.snapshot import load_split
        from llmops.evaluate.evaluation import evaluate_adapter
        from llmops.prompts import load_template
        from llmops.runs import record_step, write_json_atomic

        cfg = load_config(self.use_case)
        with fail_without_retry():
            template = load_template(cfg.prompt_template)
            eval_rows = load_split(self.use_case, self.trained["snapshot_id"], "eval")
        results = evaluate_adapter(
            eval_rows, base_model=self.trained["base_model"], revision=cfg.base_model_revision,
            adapter_dir=self.trained["adapter_dir"], template=template, cfg=cfg.evaluation,
            max_len=cfg.training.max_seq_len,
        )
        report = paths.run_dir(self.use_case, context["run_id"]) / "eval" / "results.json"
        write_json_atomic(report, results)
        run = self.trained["mlflow_run_id"]
        for name, r in results.items():
            tracking.log_metrics(run, {f"{name}_{k}": v for k, v in r.items() if k != "samples"})
        tracking.log_artifacts(run, report.parent, "eval")
        metrics = {name: {k: v for k, v in r.items() if k != "samples"} for name, r in results.items()}
        record_step(self.use_case, context["run_id"], "evaluate", metrics)
        log.info("evaluation report: %s", report)
        return {"metrics": metrics, "report": str(report), "eval_rows": len(eval_rows.head(cfg.evaluation.max_eval_rows))}


class GateOperator(BaseOperator):
    """Apply the use case's gate rules. Never fails the DAG on a rejection: register reads the decision."""

    template_fields: Sequence[str] = ("use_case", "evaluation", "trained")
    ui_color = "#fde8e8"

    def __init__(self, *, use_case: str, evaluation, trained, **kwargs):
        super().__init__(**kwargs)
        self.use_case = use_case
        self.evaluation = evaluation
        self.trained = trained

    def execute(self, context):
        from llmops import tracking
        from llmops.evaluate.gate import decide, gate_metrics
        from llmops.runs import record_step

        cfg = load_config(self.use_case)
        with fail_without_retry():
            metrics = gate_metrics(self.evaluation["metrics"])
            decision = decide(metrics, cfg.gate)
        verdict = "PASSED" if decision["passed"] else "REJECTED"
        log.info("gate %s for %s:\n  %s", verdict, self.use_case, "\n  ".join(decision["reasons"]))
        run = self.trained["mlflow_run_id"]
        tracking.client().set_tag(run, "gate.decision", verdict)
        tracking.client().set_tag(run, "gate.reasons", json.dumps(decision["reasons"])[:5000])
        record_step(self.use_case, context["run_id"], "gate", decision)
        return decision
