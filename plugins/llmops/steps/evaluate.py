"""The evaluate step: the base model, the current champion and the new adapter scored on the same eval rows.

Metrics go to the DAG run's MLflow run, the per-example scores and samples to ``<run dir>/eval/results.json``. A
preference-tuned version (its payload names a ``preference_snapshot_id``) is also scored, with base and champion,
on the held-out pairs of that snapshot's eval split (:mod:`llmops.evaluate.preferences`): its
``preference_accuracy``, ``preference_margin`` and ``reward_accuracy`` join the supervised metrics, and the
paired intervals go to the results file's ``preferences``.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

from llmops.config import UseCaseConfig
from llmops.payloads import Evaluation, Trained

log = logging.getLogger(__name__)


def champion_for(cfg: UseCaseConfig, run_dir: Path, mlflow_run: str) -> dict | None:
    """The current champion's adapter, downloaded from the registry into ``<run dir>/eval/champion``; None when
    there is none (or it is this run's own version)."""
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


def evaluate(cfg: UseCaseConfig, trained: Trained, *, run_id: str) -> Evaluation:
    """Score every candidate on the trained snapshot's eval split (and the golden snapshot's, when set), log the
    metrics as ``<candidate>_<metric>`` and the results file to MLflow, and record the step in the run summary."""
    from llmops import paths, tracking
    from llmops.atomic import write_json
    from llmops.data.snapshots.handle import Snapshots
    from llmops.evaluate.evaluation import evaluate_candidates
    from llmops.prompts import load_template
    from llmops.runs import record_step

    ev = cfg.evaluation
    template = load_template(cfg.prompt_template)
    snapshots = Snapshots.of(cfg)
    eval_rows = snapshots.load_split(trained.snapshot_id, "eval")
    golden = snapshots.load_split(ev.golden_snapshot_id, "eval") if ev.golden_snapshot_id else None
    train = snapshots.load_split(trained.snapshot_id, "train") if ev.recitation.enabled else None
    run_dir = paths.run_dir(cfg.name, run_id)
    mlflow_run = trained.mlflow_run_id
    champion = champion_for(cfg, run_dir, mlflow_run) if ev.compare_champion else None
    train_texts = [] if train is None else train["prompt"].tolist() + train["response"].tolist()
    results = evaluate_candidates(
        eval_rows, base_model=trained.base_model, revision=cfg.base_model_revision,
        adapter_dir=trained.adapter_dir, template=template, cfg=ev, max_len=cfg.training.max_seq_len,
        train_texts=train_texts, golden_rows=golden, champion=champion,
    )
    if trained.details.get("preference_snapshot_id"):
        add_preferences(cfg, results, trained, champion, template)
    path = run_dir / "eval" / "results.json"
    write_json(path, results)
    metrics = {name: c["metrics"] for name, c in results["candidates"].items()}
    for name, m in metrics.items():
        tracking.log_metrics(mlflow_run, {f"{name}_{k}": v for k, v in m.items()})
    tracking.client().log_artifact(mlflow_run, str(path), "eval")
    out = {"metrics": metrics, "champion_version": results["champion_version"], "rows": results["rows"]}
    record_step(cfg.name, run_id, "evaluate", out)
    log.info("per-example scores and samples: %s", path)
    return Evaluation(**out, results=str(path))


def add_preferences(cfg: UseCaseConfig, results: dict, trained: Trained, champion: dict | None, template) -> None:
    """The held-out preference metrics of every candidate, merged into ``results`` (metrics and per-example
    scores), with the pairs' count and the challenger's paired intervals as ``results["preferences"]``."""
    from llmops.data import preferences
    from llmops.evaluate.preferences import evaluate_preferences

    snapshot_id = trained.details["preference_snapshot_id"]
    pairs = preferences.load(cfg, snapshot_id, "eval")
    ev = cfg.evaluation
    shared = champion is not None and champion.get("base_model") in (None, trained.base_model)
    if champion is not None and not shared:
        log.warning("the champion is on base model %s, the challenger on %s: held-out preferences compare the "
                    "challenger with the base only", champion.get("base_model"), trained.base_model)
    out = evaluate_preferences(pairs, base_model=trained.base_model, revision=cfg.base_model_revision,
                               challenger=trained.adapter_dir, champion=champion["adapter_dir"] if shared else None,
                               template=template, max_len=cfg.training.max_seq_len, batch_size=ev.batch_size,
                               samples=ev.bootstrap_samples, confidence=ev.confidence)
    for name, scored in out["candidates"].items():
        if name in results["candidates"]:
            results["candidates"][name]["metrics"].update(scored["metrics"])
            results["candidates"][name]["per_example"].update(scored["per_example"])
    results["preferences"] = {"snapshot_id": snapshot_id, "pairs": out["pairs"], "intervals": out["intervals"]}
    if not out["pairs"]:
        log.warning("preference snapshot %s has no held-out pairs in its eval split: the preference metrics are "
                    "NaN and the gate's preference rule rejects (collect feedback on more questions)", snapshot_id)
