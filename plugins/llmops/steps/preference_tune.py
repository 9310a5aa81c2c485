"""The finetune step for ``training.method: dpo | kto``: preference tuning on top of the champion.

Which rows: a pinned ``preference_snapshot_id`` Param, else the triggering preference Asset event's, else the
newest preference snapshot. The reference: the champion's adapter (downloaded from the registry), which TRL
freezes as the reference model; the trained adapter starts from it too. The challenger is evaluated and gated on
the eval split of the dataset snapshot the champion was trained on, so both are scored on the same questions.
The version records ``training_method``, ``preference_snapshot_id`` and ``reference_version``.
"""

from __future__ import annotations

import logging

import pandas as pd

from llmops import names
from llmops.config import TrainingConfig, UseCaseConfig
from llmops.errors import SnapshotNotFound
from llmops.payloads import Trained

log = logging.getLogger(__name__)


def choose_preferences(cfg: UseCaseConfig, pinned: str | None, event_extras: list[dict]) -> tuple[str, str]:
    from llmops.data.preferences import preference_snapshots

    if pinned:
        return names.snapshot_id(pinned, "params.preference_snapshot_id"), "pinned by the run's Params"
    for extra in event_extras:
        if extra.get("preference_snapshot_id"):
            return extra["preference_snapshot_id"], "the triggering preference Asset event"
    found = preference_snapshots(cfg).manifests()
    if not found:
        raise SnapshotNotFound(f"use case '{cfg.name}' has no preference snapshot yet: run {cfg.name}__feedback "
                               "once enough feedback has arrived")
    return found[-1]["snapshot_id"], "the newest preference snapshot"


def run_preference_tune(cfg: UseCaseConfig, training: TrainingConfig, *, params: dict, event_extras: list[dict],
                        run_id: str) -> Trained:
    from llmops import paths, registry, tracking
    from llmops.data import preferences
    from llmops.data.snapshots.handle import Snapshots
    from llmops.model import loading
    from llmops.model.identity import identify
    from llmops.prompts import load_template
    from llmops.runs import record_step
    from llmops.train.preference import preference_tune
    from llmops.version import code_version

    pref_id, why = choose_preferences(cfg, params.get("preference_snapshot_id") or None, event_extras)
    rows = pd.concat([preferences.load(cfg, pref_id, s) for s in ("train", "eval")], ignore_index=True)
    out_dir = paths.run_dir(cfg.name, run_id)
    champion = registry.champion_info(cfg.model_name)
    reference_adapter = reference_version = None
    if champion is not None:
        reference_version = champion["version"]
        reference_adapter = out_dir / "reference_adapter"
        if loading.missing_adapter_files(reference_adapter):
            reference_adapter = registry.download_adapter(champion, reference_adapter)
        eval_snapshot = champion["tags"].get("snapshot_id") or Snapshots.of(cfg).choose(None, [])[0]
    else:
        eval_snapshot = Snapshots.of(cfg).choose(None, [])[0]
    template = load_template(cfg.prompt_template)
    base_model = params.get("base_model") or cfg.base_model
    log.info("%s on preference snapshot %s (%s): %d rows; reference: champion version %s; evaluated on snapshot %s",
             training.method, pref_id, why, len(rows), reference_version, eval_snapshot)
    lineage = {
        "use_case": cfg.name, "dag_run_id": run_id, "snapshot_id": eval_snapshot,
        "base_model": base_model, "base_model_revision": loading.base_revision(base_model, cfg.base_model_revision),
        "prompt_template": cfg.prompt_template, "prompt_template_hash": template.hash,
        "config_hash": cfg.config_hash(), "code_version": code_version(),
        "training_method": training.method, "preference_snapshot_id": pref_id,
        "reference_version": reference_version or "",
    }
    mlflow_run = tracking.run_for_dag_run(cfg.name, run_id, tags=lineage)
    tracking.log_params(mlflow_run, {**lineage, **{f"training.{k}": v for k, v in
                                                   training.model_dump(mode="json").items()}})
    result = preference_tune(
        rows, method=training.method, base_model=base_model, revision=cfg.base_model_revision, template=template,
        training=training, out_dir=out_dir, reference_adapter=reference_adapter, reference_version=reference_version,
        trust_remote_code=cfg.trust_remote_code,
        metadata={**lineage, "prompt_template_text": template.text, "training": training.model_dump(mode="json"),
                  "base_identity": identify(base_model, cfg.base_model_revision)},
        on_log=lambda step, m: tracking.log_metrics(mlflow_run, {f"train_{k}": v for k, v in m.items()}, step),
    )
    tracking.log_metrics(mlflow_run, {"train_loss_mean": result["train_loss"], "train_seconds": result["seconds"]})
    trained = Trained.from_xcom({**result, "snapshot_id": eval_snapshot, "snapshot_reason": why,
                                 "mlflow_run_id": mlflow_run, "base_model": base_model,
                                 "preference_snapshot_id": pref_id, "reference_version": reference_version})
    record_step(cfg.name, run_id, "finetune", trained.to_xcom())
    return trained
