"""The sweep's gate and registration: decide on the best finished trial
(:func:`llmops.evaluate.sweep.sweep_decision`), write the comparison table and plots to the DAG run's parent MLflow
run, record the decision as a single run's gate does (:func:`llmops.steps.gate.record_decision`), and register only
the winner, at most once per DAG run. The other trials' adapters stay where they are: in their own runs' folders
(and, for the winner, as the registered version's artifacts)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from llmops.config import UseCaseConfig
from llmops.errors import NothingToDo
from llmops.payloads import Decision, Evaluation, Registered, Trained

log = logging.getLogger(__name__)


def finished_trials(cfg: UseCaseConfig, trials: list[dict], *, run_id: str) -> tuple[dict, list[str]]:
    """``({name: {"trained", "evaluation", "results", "overrides"}}, [names of the trials that failed])``, from the
    files each trial's ``evaluate`` task left (a trial that failed left none)."""
    from llmops import paths

    done, failed = {}, []
    for entry in trials:
        name = entry["trial"]["name"]
        path = paths.trial_dir(cfg.name, run_id, name) / "eval" / "evaluation.json"
        if not path.exists():
            failed.append(name)
            continue
        data = json.loads(path.read_text())
        done[name] = {"trained": Trained.from_xcom(data["trained"]), "evaluation": Evaluation.from_xcom(
            data["evaluation"]), "overrides": entry["trial"]["overrides"]}
        done[name]["results"] = json.loads(Path(done[name]["evaluation"].results).read_text())
    return done, failed


def run_sweep_gate(cfg: UseCaseConfig, trials: list[dict], *, run_id: str) -> tuple[Decision, Trained, Evaluation]:
    """The decision on the best trial (failed trials named), recorded on the winner's run by the gate's one tail
    (:func:`llmops.steps.gate.record_decision`); the comparison on the DAG run's parent run."""
    from llmops import paths, tracking
    from llmops.evaluate.sweep import sweep_decision, write_comparison
    from llmops.steps.gate import record_decision

    done, failed = finished_trials(cfg, trials, run_id=run_id)
    decision = sweep_decision(cfg, done, failed)
    winner = done[decision["winner"]]
    c = tracking.client()
    parent = tracking.run_for_dag_run(cfg.name, run_id)
    histories = {n: [(m.step, m.value) for m in c.get_metric_history(d["trained"].mlflow_run_id, "train_loss")]
                 for n, d in done.items()}
    c.set_tag(parent, "gate.decision", "PASSED" if decision["passed"] else "REJECTED")
    for tag_run in (parent, winner["trained"].mlflow_run_id):
        c.set_tag(tag_run, "sweep.winner", decision["winner"])
    c.set_tag(parent, "sweep.failed_trials", ",".join(decision["failed_trials"]))
    sweep_dir = paths.run_dir(cfg.name, run_id) / "sweep"
    write_comparison(sweep_dir / "comparison", decision, done, histories)
    tracking.log_artifacts(parent, sweep_dir / "comparison", "sweep")
    tracking.log_metrics(parent, {"sweep_trials_finished": len(done),
                                  "sweep_trials_failed": len(decision["failed_trials"])})
    out = record_decision(cfg, decision, winner["results"], winner["evaluation"], winner["trained"], run_id=run_id,
                          loss_history=histories[decision["winner"]])
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
