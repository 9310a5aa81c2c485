"""The evaluate step: the base model, the current champion and the new adapter scored on the same eval rows.

Metrics go to the DAG run's MLflow run, the per-example scores and samples to ``<run dir>/eval/results.json``.
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
