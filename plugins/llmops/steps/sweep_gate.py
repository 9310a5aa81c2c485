"""The sweep's gate and registration: decide on the best trial (:func:`llmops.steps.sweep.sweep_decision`), write
the comparison table and plots to the DAG run's parent MLflow run, and register only the winner, at most once
per DAG run. The other trials' adapters stay where they are: in their own runs' folders (and, for the winner, as
the registered version's artifacts)."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

from llmops.config import UseCaseConfig
from llmops.errors import NothingToDo
from llmops.payloads import Decision, Evaluation, Registered, Trained

log = logging.getLogger(__name__)


def _fmt(v) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.4g}"


def write_comparison(out_dir: Path, decision: dict, done: dict, histories: dict[str, list]) -> list[Path]:
    """``comparison.md`` (one row per trial: overrides, primary metric, p-values, outcome), ``comparison.json``,
    ``loss_curves.png`` (every trial's training loss overlaid) and ``<metric>_vs_<knob>.png`` per swept knob."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from llmops.atomic import write_json, write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    metric, trials = decision["metric"], decision["trials"]
    lines = [f"# Sweep: best of {len(trials)} finished trials on {metric}", "",
             f"Winner: **{decision['winner']}** - gate {'PASSED' if decision['passed'] else 'REJECTED'}. "
             f"Failed trials: {', '.join(decision['failed_trials']) or 'none'}.", "",
             f"| trial | {metric} | eval_loss | token_f1 | p vs {decision['reference']} | Holm-adjusted p |",
             "|---|---|---|---|---|---|"]
    for name, t in trials.items():
        m = done[name]["evaluation"].metrics["challenger"]
        mark = " (winner)" if name == decision["winner"] else ""
        lines.append(f"| {name}{mark} | {_fmt(t['value'])} | {_fmt(m.get('eval_loss'))} | {_fmt(m.get('token_f1'))} "
                     f"| {_fmt(t['p'])} | {_fmt(t['adjusted'])} |")
    lines += [f"| {name} | failed | | | | |" for name in decision["failed_trials"]]
    files = [write_text(out_dir / "comparison.md", "\n".join(lines) + "\n"),
             write_json(out_dir / "comparison.json", {"trials": trials, "winner": decision["winner"],
                                                      "failed_trials": decision["failed_trials"]})]
    fig, ax = plt.subplots(figsize=(6, 3.2))
    for name, history in histories.items():
        if history:
            steps, losses = zip(*sorted(history), strict=True)
            ax.plot(steps, losses, marker=".", linewidth=1, label=name)
    ax.set(xlabel="step", ylabel="train loss", title="Training loss per trial")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out_dir / "loss_curves.png", dpi=110)
    plt.close(fig)
    files.append(out_dir / "loss_curves.png")
    knobs = sorted({k for t in trials.values() for k in t["overrides"]})
    for knob in knobs:
        xs = [(t["overrides"][knob], t["value"]) for t in trials.values() if knob in t["overrides"]]
        fig, ax = plt.subplots(figsize=(5, 3.2))
        ax.scatter([x for x, _ in xs], [y for _, y in xs])
        ax.set(xlabel=knob, ylabel=metric, title=f"{metric} vs {knob}")
        if knob == "learning_rate":
            ax.set_xscale("log")
        ax.grid(alpha=0.3)
        fig.tight_layout()
        path = out_dir / f"{metric}_vs_{knob}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        files.append(path)
    return files


def run_sweep_gate(cfg: UseCaseConfig, trials: list[dict], *, run_id: str) -> tuple[Decision, Trained, Evaluation]:
    """The decision on the best trial (failed trials named), its report, the comparison on the parent run."""
    from llmops import paths, tracking
    from llmops.atomic import write_json
    from llmops.evaluate.gate import decision_text
    from llmops.evaluate.report import write_report
    from llmops.runs import record_step
    from llmops.steps.sweep import sweep_decision

    outcome = sweep_decision(cfg, trials, run_id=run_id)
    decision, done = outcome["decision"], outcome["done"]
    winner = done[decision["winner"]]
    verdict = "PASSED" if decision["passed"] else "REJECTED"
    failed = f"; failed trials: {', '.join(decision['failed_trials'])}" if decision["failed_trials"] else ""
    decision["text"] = decision_text(decision, title=f"for {cfg.model_name} (run {run_id}, sweep winner "
                                                     f"{decision['winner']}{failed})")
    log.info("gate %s for %s:\n%s", verdict, cfg.name, decision["text"])
    c = tracking.client()
    parent, run = tracking.run_for_dag_run(cfg.name, run_id), winner["trained"].mlflow_run_id
    for tag_run in (parent, run):
        c.set_tag(tag_run, "gate.decision", verdict)
        c.set_tag(tag_run, "sweep.winner", decision["winner"])
    c.set_tag(parent, "sweep.failed_trials", ",".join(decision["failed_trials"]))
    histories = {n: [(m.step, m.value) for m in c.get_metric_history(d["trained"].mlflow_run_id, "train_loss")]
                 for n, d in done.items()}
    sweep_dir = paths.run_dir(cfg.name, run_id) / "sweep"
    write_comparison(sweep_dir / "comparison", decision, done, histories)
    tracking.log_artifacts(parent, sweep_dir / "comparison", "sweep")
    tracking.log_metrics(parent, {"sweep_trials_finished": len(done),
                                  "sweep_trials_failed": len(decision["failed_trials"])})
    out_dir = Path(winner["evaluation"].results).parent / "report"
    write_json(out_dir / "decision.json", decision)
    report = write_report(out_dir, winner["results"], decision, title=f"{cfg.name} / {run_id} / {decision['winner']}",
                          loss_history=histories[decision["winner"]], samples=cfg.evaluation.bootstrap_samples,
                          confidence=cfg.evaluation.confidence)
    tracking.log_artifacts(run, out_dir, "eval/report")
    artifact = f"runs:/{run}/eval/report/report.md"
    c.set_tag(run, "eval.report", artifact)
    out = Decision.from_xcom({**decision, "report": str(report), "report_artifact": artifact})
    record_step(cfg.name, run_id, "gate", out.to_xcom())
    end_other_trials(cfg, run_id, done, decision)
    return out, winner["trained"], winner["evaluation"]


def end_other_trials(cfg: UseCaseConfig, run_id: str, done: dict, decision: dict) -> None:
    """The other finished trials' adapters logged to their own MLflow runs (``adapter/``, host paths removed) and
    those runs ended; the failed trials' runs ended as FAILED. The winner's run ends at registration."""
    from llmops import tracking
    from llmops.model.identity import portable_adapter

    for name, d in done.items():
        if name == decision["winner"]:
            continue
        trained = d["trained"]
        adapter = portable_adapter(trained.adapter_dir, Path(trained.adapter_dir).parent / "portable" / "adapter")
        tracking.log_artifacts(trained.mlflow_run_id, adapter, "adapter")
        tracking.end_run(trained.mlflow_run_id)
    c = tracking.client()
    exp = tracking.experiment_id(c, cfg.name)
    for name in decision["failed_trials"]:
        for run in c.search_runs([exp], filter_string=f"tags.`{tracking.TRIAL_OF_TAG}` = '{run_id}' and "
                                                      f"tags.`{tracking.TRIAL_TAG}` = '{name}'"):
            tracking.end_run(run.info.run_id, "FAILED")


def registered_for_dag_run(cfg: UseCaseConfig, run_id: str) -> dict | None:
    """The version this DAG run already registered (any of its trials), if any: a re-run registers no second."""
    from llmops import tracking

    found = tracking.client().search_model_versions(f"name = '{cfg.model_name}' and tags.dag_run_id = '{run_id}'")
    return None if not found else {"version": str(min(int(v.version) for v in found)), "run_id": found[0].run_id}


def register_winner(cfg: UseCaseConfig, trained: Trained, evaluation: Evaluation, decision: Decision,
                    approval: dict | None = None, *, run_id: str) -> Registered:
    """:func:`llmops.steps.register.register` for the sweep's winner, unless this DAG run registered another
    trial already (a retry of the same trial's registration converges on its version and sets the aliases)."""
    from llmops.steps.register import register

    done = registered_for_dag_run(cfg, run_id) if decision.passed else None
    if done is not None and done["run_id"] != trained.mlflow_run_id:  # the same trial: register() converges on it
        raise NothingToDo(f"DAG run {run_id} already registered {cfg.model_name} version {done['version']}; "
                          "a re-run registers no second version")
    log.info("registering the sweep's winner %s", json.dumps(decision.details.get("winner")))
    return register(cfg, trained, evaluation, decision, approval, run_id=run_id)
