"""evaluate -> gate: score base, champion and challenger on the same rows, then decide and write the report."""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence

from airflow.sdk import BaseOperator

from llmops.operators.common import fail_without_retry, load_config

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


class EvaluateOperator(BaseOperator):
    """Base model, current champion and challenger on the same eval rows; metrics to MLflow, scores to a file."""

    template_fields: Sequence[str] = ("use_case", "trained")
    ui_color = "#fdfbe8"

    def __init__(self, *, use_case: str, trained, **kwargs):
        super().__init__(**kwargs)
        self.use_case = use_case
        self.trained = trained

    def execute(self, context):
        from llmops import paths, tracking
        from llmops.data.snapshot import load_split
        from llmops.evaluate.evaluation import evaluate_candidates
        from llmops.prompts import load_template
        from llmops.runs import record_step, write_json_atomic

        cfg = load_config(self.use_case)
        ev = cfg.evaluation
        with fail_without_retry():
            template = load_template(cfg.prompt_template)
            eval_rows = load_split(self.use_case, self.trained["snapshot_id"], "eval")
            golden = load_split(self.use_case, ev.golden_snapshot_id, "eval") if ev.golden_snapshot_id else None
            train = load_split(self.use_case, self.trained["snapshot_id"], "train") if ev.recitation.enabled else None
        run_dir = paths.run_dir(self.use_case, context["run_id"])
        mlflow_run = self.trained["mlflow_run_id"]
        champion = _champion_for(cfg, run_dir, mlflow_run) if ev.compare_champion else None
        train_texts = [] if train is None else train["prompt"].tolist() + train["response"].tolist()
        results = evaluate_candidates(
            eval_rows, base_model=self.trained["base_model"], revision=cfg.base_model_revision,
            adapter_dir=self.trained["adapter_dir"], template=template, cfg=ev, max_len=cfg.training.max_seq_len,
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
        return {**out, "results": str(path)}


class GateOperator(BaseOperator):
    """Apply the use case's gate rules and write the eval report. A rejection never fails the DAG."""

    template_fields: Sequence[str] = ("use_case", "evaluation", "trained")
    ui_color = "#fde8e8"

    def __init__(self, *, use_case: str, evaluation, trained, **kwargs):
        super().__init__(**kwargs)
        self.use_case = use_case
        self.evaluation = evaluation
        self.trained = trained

    def execute(self, context):
        from pathlib import Path

        from llmops import tracking
        from llmops.evaluate.gate import decide, decision_text
        from llmops.evaluate.report import write_report
        from llmops.runs import record_step, write_json_atomic

        cfg = load_config(self.use_case)
        results = json.loads(Path(self.evaluation["results"]).read_text())
        per_example = {name: c["per_example"] for name, c in results["candidates"].items()}
        with fail_without_retry():
            decision = decide(self.evaluation["metrics"], cfg.gate, per_example,
                              bootstrap_samples=cfg.evaluation.bootstrap_samples,
                              confidence=cfg.evaluation.confidence)
        decision["champion_version"] = self.evaluation.get("champion_version")
        verdict = "PASSED" if decision["passed"] else "REJECTED"
        text = decision_text(decision, title=f"for {cfg.model_name} (run {context['run_id']})")
        decision["text"] = text
        log.info("gate %s for %s:\n%s", verdict, self.use_case, text)

        run = self.trained["mlflow_run_id"]
        c = tracking.client()
        c.set_tag(run, "gate.decision", verdict)
        c.set_tag(run, "gate.reasons", json.dumps(decision["reasons"])[:5000])
        out_dir = Path(self.evaluation["results"]).parent / "report"
        write_json_atomic(out_dir / "decision.json", decision)
        history = [(m.step, m.value) for m in c.get_metric_history(run, "train_loss")]
        report = write_report(out_dir, results, decision, title=f"{self.use_case} / {context['run_id']}",
                              loss_history=history, samples=cfg.evaluation.bootstrap_samples,
                              confidence=cfg.evaluation.confidence)
        tracking.log_artifacts(run, out_dir, "eval/report")
        artifact = f"runs:/{run}/eval/report/report.md"
        c.set_tag(run, "eval.report", artifact)
        log.info("evaluation report: %s (MLflow artifact %s)", report, artifact)
        _note(context, text)
        decision.update(report=str(report), report_artifact=artifact)
        record_step(self.use_case, context["run_id"], "gate", decision)
        return decision


NOTE_CONNECTION = "llmops_airflow_api"


def _note(context, text: str) -> bool:
    """Write the decision into the DAG run's note through Airflow's REST API.

    The Task SDK of Airflow 3.3 cannot set the note of a running DAG run, so this needs an HTTP connection
    ``llmops_airflow_api`` (host = the API server's base URL; login/password for ``/auth/token``, or a token as
    the password). Without it the note is left alone and the log says so."""
    from airflow.sdk import BaseHook

    try:
        conn = BaseHook.get_connection(NOTE_CONNECTION)
    except Exception:  # not defined: the usual case on the embedded default
        log.info("DAG run note not set: no '%s' connection to Airflow's REST API (the Task SDK cannot set it)",
                 NOTE_CONNECTION)
        return False
    import httpx

    base = (conn.host if "://" in (conn.host or "") else f"{conn.schema or 'http'}://{conn.host}")
    base = base.rstrip("/") + (f":{conn.port}" if conn.port else "")
    try:
        token = conn.password
        if conn.login:
            r = httpx.post(f"{base}/auth/token", json={"username": conn.login, "password": conn.password}, timeout=10)
            r.raise_for_status()
            token = r.json()["access_token"]
        dag_run = context["dag_run"]
        r = httpx.patch(f"{base}/api/v2/dags/{dag_run.dag_id}/dagRuns/{dag_run.run_id}",
                        params={"update_mask": "note"}, json={"note": text[:1000]},
                        headers={"Authorization": f"Bearer {token}"}, timeout=10)
        r.raise_for_status()
    except (httpx.HTTPError, KeyError, ValueError) as e:
        log.warning("DAG run note not set through %s: %s", base, e)
        return False
    log.info("DAG run note set through %s", base)
    return True
