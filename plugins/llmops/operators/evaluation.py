"""evaluate -> gate: score base, champion and challenger on the same rows, then decide and write the report."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from airflow.sdk import BaseOperator

from llmops.operators.common import fail_without_retry, load_config
from llmops.operators.lineage import ReportsLineage
from llmops.operators.links import MLflowRunLink
from llmops.payloads import Evaluation, Trained

log = logging.getLogger(__name__)


def _champion_for(cfg, run_dir, mlflow_run: str) -> dict | None:
    """The current champion's adapter, downloaded from the registry; None when there is none (or it is this run's)."""
    import shutil

    from llmops import registry

    info = registry.champion_info(cfg.model_name)
    if info is None:
        log.info("no champion for %s yet: relative rules compare with the base model", cfg.model_name)
        return None
    if info["run_id"] == mlflow_run:
        log.info("the champion (version %s) is this run's own version: not compared with itself", info["version"])
        return None
    dst = run_dir / "eval" / "champion"
    shutil.rmtree(dst, ignore_errors=True)
    adapter_dir = registry.download_adapter(info, dst)
    log.info("champion %s version %s downloaded from %s to %s", cfg.model_name, info["version"], info["source"],
             adapter_dir)
    return {"version": info["version"], "adapter_dir": str(adapter_dir), "base_model": info["tags"].get("base_model"),
            "revision": info["tags"].get("base_model_revision") or None}


class EvaluateOperator(ReportsLineage, BaseOperator):
    """Base model, current champion and challenger on the same eval rows; metrics to MLflow, scores to a file."""

    template_fields: Sequence[str] = ("use_case", "trained")
    ui_color = "#fdfbe8"
    operator_extra_links = (MLflowRunLink(),)

    def __init__(self, *, use_case: str, trained, **kwargs):
        super().__init__(**kwargs)
        self.use_case = use_case
        self.trained = trained

    def execute(self, context):
        from llmops import paths, tracking
        from llmops.data.snapshots.handle import Snapshots
        from llmops.evaluate.evaluation import evaluate_candidates
        from llmops.prompts import load_template
        from llmops.runs import record_step, write_json_atomic

        cfg = load_config(self.use_case)
        ev = cfg.evaluation
        with fail_without_retry():
            template = load_template(cfg.prompt_template)
            sid = Trained.from_xcom(self.trained).snapshot_id
            snapshots = Snapshots.of(cfg)
            eval_rows = snapshots.load_split(sid, "eval")
            golden = snapshots.load_split(ev.golden_snapshot_id, "eval") if ev.golden_snapshot_id else None
            train = snapshots.load_split(sid, "train") if ev.recitation.enabled else None
        trained = Trained.from_xcom(self.trained)
        run_dir = paths.run_dir(self.use_case, context["run_id"])
        mlflow_run = trained.mlflow_run_id
        champion = _champion_for(cfg, run_dir, mlflow_run) if ev.compare_champion else None
        train_texts = [] if train is None else train["prompt"].tolist() + train["response"].tolist()
        results = evaluate_candidates(
            eval_rows, base_model=trained.base_model, revision=cfg.base_model_revision,
            adapter_dir=trained.adapter_dir, template=template, cfg=ev, max_len=cfg.training.max_seq_len,
            train_texts=train_texts, golden_rows=golden, champion=champion,
        )
        path = run_dir / "eval" / "results.json"
        write_json_atomic(path, results)
        metrics = {name: c["metrics"] for name, c in results["candidates"].items()}
        for name, m in metrics.items():
            tracking.log_metrics(mlflow_run, {f"{name}_{k}": v for k, v in m.items()})
        tracking.client().log_artifact(mlflow_run, str(path), "eval")
        out = {"metrics": metrics, "champion_version": results["champion_version"], "rows": results["rows"]}
        record_step(self.use_case, context["run_id"], "evaluate", out)
        log.info("per-example scores and samples: %s", path)
        return Evaluation(**out, results=str(path)).to_xcom()

    def lineage_of(self, result):
        from llmops.lineage import steps
        from llmops.operators import lineage

        return steps.evaluate(result, self.trained,
                              lineage.trained_snapshot_uri(self.use_case, self.trained),
                              lineage.registry_uri(), lineage.model_name(self.use_case))

    def inputs_at_start(self):  # the champion compared is found inside execute: only in the COMPLETE event
        from llmops.lineage import steps
        from llmops.operators import lineage

        return steps.evaluate({"results": ""}, self.trained,
                              lineage.trained_snapshot_uri(self.use_case, self.trained),
                              lineage.registry_uri(), lineage.model_name(self.use_case)).inputs


class GateOperator(ReportsLineage, BaseOperator):
    """Apply the use case's gate rules and write the eval report. A rejection never fails the DAG."""

    template_fields: Sequence[str] = ("use_case", "evaluation", "trained")
    ui_color = "#fde8e8"

    def __init__(self, *, use_case: str, evaluation, trained, **kwargs):
        super().__init__(**kwargs)
        self.use_case = use_case
        self.evaluation = evaluation
        self.trained = trained

    def execute(self, context):
        from llmops.evaluate.gate_step import run_gate
        from llmops.run_note import set_run_note
        from llmops.runs import record_step

        cfg = load_config(self.use_case)
        with fail_without_retry():
            decision = run_gate(cfg, Evaluation.from_xcom(self.evaluation), Trained.from_xcom(self.trained),
                                run_id=context["run_id"])
        dag_run = context.get("dag_run")
        if dag_run is not None:
            set_run_note(dag_run.dag_id, dag_run.run_id, decision.text)
        record_step(self.use_case, context["run_id"], "gate", decision.to_xcom())
        return decision.to_xcom()

    def lineage_of(self, result):
        from llmops.lineage import steps

        return steps.gate(result, self.evaluation)

    def inputs_at_start(self):
        from llmops.lineage import steps

        return steps.gate({}, self.evaluation).inputs
