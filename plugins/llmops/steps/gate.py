"""The gate step as a plain function: decide with the use case's rules (and the judge, when enabled), then
:func:`record_decision`, the one tail of both gates (a single run's here, a sweep's winner's in
:mod:`llmops.steps.sweep_gate`). The ``gate`` operator only calls :func:`run_gate`, sets the DAG run's note and
pushes the payload."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from llmops.config import UseCaseConfig
from llmops.payloads import Decision, Evaluation, Trained

log = logging.getLogger(__name__)


def run_gate(cfg: UseCaseConfig, evaluation: Evaluation, trained: Trained, *, run_id: str) -> Decision:
    """The decision (every rule's outcome, fail-closed), recorded by :func:`record_decision`."""
    from llmops.evaluate.gate import decide

    results = json.loads(Path(evaluation.results).read_text())
    per_example = {name: c["per_example"] for name, c in results["candidates"].items()}
    metrics, gate_cfg, judged = evaluation.metrics, cfg.gate, None
    if cfg.evaluation.judge.enabled:  # a judge down or unparseable raises here: the task fails, is retried
        from llmops.evaluate.judging import judge_for_gate

        metrics, per_example, gate_cfg, judged = judge_for_gate(cfg, results, metrics, per_example,
                                                                report_dir(evaluation))
    if cfg.training.method != "sft":  # a preference-tuned version: held-out preferences + non-inferiority
        from llmops.evaluate.preferences import gate_rules

        gate_cfg = gate_rules(gate_cfg, getattr(cfg.training, cfg.training.method), metrics)
    decision = decide(metrics, gate_cfg, per_example, bootstrap_samples=cfg.evaluation.bootstrap_samples,
                      confidence=cfg.evaluation.confidence)
    if judged is not None:
        from llmops.evaluate.judging import mark_decision

        mark_decision(decision, judged)
    decision["champion_version"] = evaluation.champion_version
    return record_decision(cfg, decision, results, evaluation, trained, run_id=run_id, judged=judged)


def report_dir(evaluation: Evaluation) -> Path:
    """Where the decision and its report are written: ``report/`` next to the evaluation results."""
    return Path(evaluation.results).parent / "report"


def record_decision(cfg: UseCaseConfig, decision: dict, results: dict, evaluation: Evaluation, trained: Trained, *,
                    run_id: str, judged: dict | None = None, loss_history: list | None = None) -> Decision:
    """The gate's tail, for a single run and a sweep's winner (its decision names the ``winner`` and the
    ``failed_trials``) alike: the decision's text; ``gate.*`` tags (and the judge's figures) on the run's MLflow
    run; ``decision.json`` and the report (``report.md`` + plots, the judge's verdicts) in :func:`report_dir` and
    in MLflow; the step recorded in the run summary. ``loss_history`` defaults to the run's ``train_loss``."""
    from llmops import tracking
    from llmops.atomic import write_json, write_text
    from llmops.evaluate.gate import decision_text
    from llmops.evaluate.report import write_report
    from llmops.runs import record_step

    winner = decision.get("winner")  # a sweep's
    failed = ", ".join(decision.get("failed_trials") or [])
    about = f", sweep winner {winner}{f'; failed trials: {failed}' if failed else ''}" if winner else ""
    verdict = "PASSED" if decision["passed"] else "REJECTED"
    decision["text"] = decision_text(decision, title=f"for {cfg.model_name} (run {run_id}{about})")
    if judged is not None:
        from llmops.evaluate.judging import judge_text, verdict_lines

        decision["text"] += judge_text(decision)
    log.info("gate %s for %s:\n%s", verdict, cfg.name, decision["text"])

    run, c = trained.mlflow_run_id, tracking.client()
    c.set_tag(run, "gate.decision", verdict)
    c.set_tag(run, "gate.reasons", json.dumps(decision["reasons"])[:5000])
    if judged is not None:  # the judge's figures and verdicts (with explanations) in the run
        tracking.log_metrics(run, {k: v for k, v in judged["metrics"].items()})
        c.set_tag(run, "judge.trusted", str(judged["trusted"]))
    out_dir = report_dir(evaluation)
    write_json(out_dir / "decision.json", decision)
    if loss_history is None:
        loss_history = [(m.step, m.value) for m in c.get_metric_history(run, "train_loss")]
    report = write_report(out_dir, results, decision, title=f"{cfg.name} / {run_id}{f' / {winner}' if winner else ''}",
                          loss_history=loss_history, samples=cfg.evaluation.bootstrap_samples,
                          confidence=cfg.evaluation.confidence)
    if judged is not None:
        write_text(report, report.read_text() + "\n".join(verdict_lines(judged)) + "\n")
    tracking.log_artifacts(run, out_dir, "eval/report")
    artifact = f"runs:/{run}/eval/report/report.md"
    c.set_tag(run, "eval.report", artifact)
    log.info("evaluation report: %s (MLflow artifact %s)", report, artifact)
    out = Decision.from_xcom({**decision, "report": str(report), "report_artifact": artifact})
    record_step(cfg.name, run_id, "gate", out.to_xcom())
    return out
