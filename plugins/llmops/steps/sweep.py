"""A hyperparameter sweep's steps as plain functions: plan the trials, score the references once, score each
trial. The best trial is gated by :mod:`llmops.steps.sweep_gate` (the statistics in :mod:`llmops.evaluate.sweep`).

The finetune DAG of a use case with ``training.sweep`` runs ``plan`` -> ``reference`` (base model and champion,
once per DAG run) and ``finetune`` / ``evaluate`` mapped over the trials -> ``gate`` -> ``register``. Every trial
writes under ``<run dir>/trials/<name>`` (:func:`llmops.paths.trial_dir`) and into its own MLflow run nested
under the DAG run's. A trial that failed has no evaluation there: the gate names it and chooses among the others.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from llmops.config import UseCaseConfig
from llmops.payloads import Evaluation, Trained

log = logging.getLogger(__name__)


def plan(cfg: UseCaseConfig, *, params: dict, event_extras: list[dict], run_id: str) -> list[dict]:
    """The trials of this DAG run as ``expand_kwargs`` entries ``{"trial": {"name", "overrides", "snapshot_id",
    "base_model"}}``: the ``sweep`` Param (JSON) when given, else ``training.sweep``; the snapshot is chosen once
    here so every trial and the references use the same rows."""
    from llmops import names, paths
    from llmops.atomic import write_json
    from llmops.data.snapshots.handle import Snapshots
    from llmops.train.sweep import from_param

    sweep = cfg.training.sweep
    trials = from_param(params.get("sweep"), sweep, max_trials=sweep.max_trials if sweep else 8)
    pinned = params.get("snapshot_id")
    pinned = names.snapshot_id(pinned, "params.snapshot_id") if pinned not in (None, "") else None
    snapshot_id, why = Snapshots.of(cfg).choose(pinned, event_extras)
    base_model = params.get("base_model") or cfg.base_model
    log.info("sweep of %d trials on snapshot %s (%s): %s", len(trials), snapshot_id, why,
             ", ".join(t["name"] for t in trials))
    out = [{"trial": {**t, "snapshot_id": snapshot_id, "base_model": base_model}} for t in trials]
    write_json(paths.run_dir(cfg.name, run_id) / "sweep" / "plan.json", out)
    return out


def _scorer(cfg: UseCaseConfig, snapshot_id: str):
    from llmops.data.snapshots.handle import Snapshots
    from llmops.evaluate.evaluation import Scorer
    from llmops.prompts import load_template

    ev, snapshots = cfg.evaluation, Snapshots.of(cfg)
    sets = {"": snapshots.load_split(snapshot_id, "eval").head(ev.max_eval_rows).reset_index(drop=True)}
    if ev.golden_snapshot_id:
        sets["golden_"] = snapshots.load_split(ev.golden_snapshot_id, "eval").head(ev.max_eval_rows).reset_index(
            drop=True)
    train = snapshots.load_split(snapshot_id, "train") if ev.recitation.enabled else None
    texts = [] if train is None else train["prompt"].tolist() + train["response"].tolist()
    return Scorer(sets, load_template(cfg.prompt_template), ev, cfg.training.max_seq_len, texts), sets


def reference_path(cfg: UseCaseConfig, run_id: str) -> Path:
    from llmops import paths

    return paths.run_dir(cfg.name, run_id) / "sweep" / "reference.json"


def evaluate_references(cfg: UseCaseConfig, trials: list[dict], *, run_id: str) -> dict:
    """Score the base model and the current champion once for the whole sweep, on the rows every trial is scored
    on; written to ``<run dir>/sweep/reference.json`` and logged to the DAG run's (parent) MLflow run."""
    from llmops import paths, registry, tracking
    from llmops.atomic import write_json
    from llmops.model import loading
    from llmops.steps.evaluate import champion_for

    trial = trials[0]["trial"]
    scorer, sets = _scorer(cfg, trial["snapshot_id"])
    parent = tracking.run_for_dag_run(cfg.name, run_id)
    champion = None
    if cfg.evaluation.compare_champion:
        info = registry.champion_info(cfg.model_name)
        if info is not None and info["tags"].get("dag_run_id") != run_id:  # never this run's own winner
            champion = champion_for(cfg, paths.run_dir(cfg.name, run_id), parent)
    candidates = {}
    base, tokenizer = loading.load_base(trial["base_model"], cfg.base_model_revision)
    candidates["base"] = scorer.score(base, tokenizer)
    if champion is not None:
        same = (champion["base_model"], champion.get("revision") or None) == (trial["base_model"],
                                                                              cfg.base_model_revision or None)
        if not same:
            base, tokenizer = loading.load_base(champion["base_model"], champion.get("revision") or None)
        model = loading.load_adapter(base, champion["adapter_dir"], name="champion")
        candidates["champion"] = scorer.score(model, tokenizer)
    out = {"candidates": candidates, "champion_version": champion["version"] if champion else None,
           "rows": {k.rstrip("_") or "eval": len(v) for k, v in sets.items()}, "snapshot_id": trial["snapshot_id"]}
    path = reference_path(cfg, run_id)
    write_json(path, out)
    for name, c in candidates.items():
        tracking.log_metrics(parent, {f"{name}_{k}": v for k, v in c["metrics"].items()})
    log.info("references scored once for %d trials: %s", len(trials), ", ".join(
        f"{n} eval_loss {c['metrics']['eval_loss']:.4f}" for n, c in candidates.items()))
    return {"results": str(path), "champion_version": out["champion_version"], "rows": out["rows"],
            "metrics": {n: c["metrics"] for n, c in candidates.items()}}


def evaluate_trial(cfg: UseCaseConfig, trial: dict, trained: Trained, *, run_id: str) -> Evaluation:
    """Score one trial's adapter on the references' rows; its ``results.json`` holds the references' scores too
    (so the gate and the report read one file per trial, as for a single run)."""
    from llmops import tracking
    from llmops.atomic import write_json
    from llmops.model import loading

    reference = json.loads(reference_path(cfg, run_id).read_text())
    scorer, _ = _scorer(cfg, trial["snapshot_id"])
    base, tokenizer = loading.load_base(trained.base_model, cfg.base_model_revision)
    model = loading.load_adapter(base, trained.adapter_dir, name="challenger")
    challenger = scorer.score(model, tokenizer)
    results = {**reference, "candidates": {**reference["candidates"], "challenger": challenger}}
    path = Path(trained.adapter_dir).parent / "eval" / "results.json"
    write_json(path, results)
    metrics = {name: c["metrics"] for name, c in results["candidates"].items()}
    tracking.log_metrics(trained.mlflow_run_id, {f"challenger_{k}": v for k, v in challenger["metrics"].items()})
    tracking.client().log_artifact(trained.mlflow_run_id, str(path), "eval")
    evaluation = Evaluation(metrics=metrics, results=str(path), champion_version=results["champion_version"],
                            rows=results["rows"])
    write_json(path.parent / "evaluation.json", {"trained": trained.to_xcom(), "evaluation": evaluation.to_xcom()})
    log.info("trial %s: eval_loss %.4f (base %.4f)", trial["name"], challenger["metrics"]["eval_loss"],
             metrics["base"]["eval_loss"])
    return evaluation


def trained_of(cfg: UseCaseConfig, trial: dict, *, run_id: str) -> Trained:
    """The trial's :class:`Trained` as its finetune task recorded it in the run summary."""
    from llmops import paths
    from llmops.errors import NothingToDo

    summary = paths.run_dir(cfg.name, run_id) / "summary.json"
    data = (json.loads(summary.read_text()) if summary.exists() else {}).get(f"finetune[{trial['name']}]")
    if not data:
        raise NothingToDo(f"trial {trial['name']} has no trained adapter (its finetune task failed): not evaluated")
    return Trained.from_xcom(data)
