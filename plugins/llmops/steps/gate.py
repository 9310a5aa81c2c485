"""The gate step as a plain function: decide with the use case's rules, record the decision in MLflow, write the
report, record it in the run summary. The ``gate`` operator only calls :func:`run_gate`, sets the DAG run's note
and pushes the payload."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from llmops.config import UseCaseConfig
from llmops.payloads import Decision, Evaluation, Trained

log = logging.getLogger(__name__)


def run_gate(cfg: UseCaseConfig, evaluation: Evaluation, trained: Trained, *, run_id: str) -> Decision:
    """The decision (every rule's outcome, fail-closed), tagged on the run's MLflow run (``gate.*``), with
    ``decision.json`` and the report (``report.md`` + plots) next to the evaluation results and in MLflow."""
    from llmops import tracking
    from llmops.atomic import write_json
    from llmops.evaluate.gate import decide, decision_text
    from llmops.evaluate.report import write_report
    from llmops.runs import record_step

    results = json.loads(Path(evaluation.results).read_text())
    per_example = {name: c["per_example"] for name, c in results["candidates"].items()}
    metrics, gate_cfg, judged = evaluation.metrics, cfg.gate, None
    if cfg.evaluation.judge.enabled:  # a judge down or unparseable raises here: the task fails, is retried
        from llmops.steps.judge import judge_for_gate

        metrics, per_example, gate_cfg, judged = judge_for_gate(cfg, results, metrics, per_example, evaluation)
    decision = decide(metrics, gate_cfg, per_example, bootstrap_samples=cfg.evaluation.bootstrap_samples,
                      confidence=cfg.evaluation.confidence)
    if judged is not None:
        from llmops.steps.judge import mark_decision

        mark_decision(decision, cfg, judged)
    decision["champion_version"] = evaluation.champion_version
    verdict = "PASSED" if decision["passed"] else "REJECTED"
    decision["text"] = decision_text(decision, title=f"for {cfg.model_name} (run {run_id})")
    if judged is not None:
        from llmops.steps.judge import judge_text

        decision["text"] += judge_text(decision)
    log.info("gate %s for %s:\n%s", verdict, cfg.name, decision["text"])

    run = trained.mlflow_run_id
    c = tracking.client()
    c.set_tag(run, "gate.decision", verdict)
    c.set_tag(run, "gate.reasons", json.dumps(decision["reasons"])[:5000])
    if judged is not None:  # the judge's figures and verdicts (with explanations) in the run
        tracking.log_metrics(run, {k: v for k, v in judged["metrics"].items()})
        c.set_tag(run, "judge.trusted", str(judged["trusted"]))
    out_dir = Path(evaluation.results).parent / "report"
    write_json(out_dir / "decision.json", decision)
    history = [(m.step, m.value) for m in c.get_metric_history(run, "train_loss")]
    report = write_report(out_dir, results, decision, title=f"{cfg.name} / {run_id}", loss_history=history,
                          samples=cfg.evaluation.bootstrap_samples, confidence=cfg.evaluation.confidence)
    if judged is not None:
        from llmops.atomic import write_text
        from llmops.steps.judge import verdict_lines

        write_text(report, report.read_text() + "\n".join(verdict_lines(judged)) + "\n")
    tracking.log_artifacts(run, out_dir, "eval/report")
    artifact = f"runs:/{run}/eval/report/report.md"
    c.set_tag(run, "eval.report", artifact)
    log.info("evaluation report: %s (MLflow artifact %s)", report, artifact)
    out = Decision.from_xcom({**decision, "report": str(report), "report_artifact": artifact})
    record_step(cfg.name, run_id, "gate", out.to_xcom())
    return out
