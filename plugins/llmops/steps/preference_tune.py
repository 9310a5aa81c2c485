"""The finetune step for ``training.method: dpo | kto`` (the DAG's ``PreferenceTuneOperator``): preference tuning
on top of the champion, through the same launcher as supervised tuning (torchrun on several GPUs).

Which rows: a pinned ``preference_snapshot_id`` Param, else the triggering preference Asset event's, else the
newest preference snapshot; its train split only (the eval split's pairs are held out: the evaluate step scores
base, champion and challenger on them). The method's own settings (``training.dpo`` / ``training.kto``) apply; the
run's ``learning_rate`` and ``epochs`` Params, when set, override those, not the supervised ones. The reference:
the champion's adapter (downloaded from the registry), which TRL freezes as the reference model; the trained
adapter starts from it too. The challenger is evaluated and gated on the eval split of the dataset snapshot the
champion was trained on, so both are scored on the same questions (without a champion, the newest dataset
snapshot: picked, never written, so ``snapshots.train_on: last_n`` writes no union here).
The version records ``training_method``, ``preference_snapshot_id`` and ``reference_version``.
"""

from __future__ import annotations

import logging

from llmops import names
from llmops.config import UseCaseConfig
from llmops.errors import SnapshotNotFound
from llmops.payloads import Trained
from llmops.steps.finetune import effective_training, lineage_of, train_logged

log = logging.getLogger(__name__)


def choose_preferences(cfg: UseCaseConfig, pinned: str | None, event_extras: list[dict]) -> tuple[str, str]:
    from llmops.data.preferences import preference_snapshots

    if pinned:
        return names.snapshot_id(pinned, "params.preference_snapshot_id"), "pinned by the run's Params"
    for extra in event_extras:
        if extra.get("preference_snapshot_id"):  # a Preferences payload (or an event written before it)
            return (names.snapshot_id(extra["preference_snapshot_id"], "asset event extra.preference_snapshot_id"),
                    "the triggering preference Asset event")
    found = preference_snapshots(cfg).manifests()
    if not found:
        raise SnapshotNotFound(f"use case '{cfg.name}' has no preference snapshot yet: run {cfg.name}__feedback "
                               "once enough feedback has arrived")
    return found[-1]["snapshot_id"], "the newest preference snapshot"


def method_training(cfg: UseCaseConfig, params: dict):
    """The training config of a preference run: the run's Params applied, its ``learning_rate`` and ``epochs`` to
    the method's own block (``training.dpo`` / ``training.kto``) rather than to the supervised settings."""
    training = effective_training(cfg, {k: v for k, v in params.items() if k not in ("learning_rate", "epochs")})
    update = {k: float(params[k]) for k in ("learning_rate", "epochs") if params.get(k)}
    if not update:
        return training
    own = getattr(training, training.method)
    return training.model_copy(update={training.method: own.model_copy(update=update)})


def run_preference_tune(cfg: UseCaseConfig, *, params: dict, event_extras: list[dict], run_id: str,
                        try_number: int = 1) -> Trained:
    """DPO or KTO (``training.method``) for one DAG run, through the same launcher as supervised tuning."""
    from llmops import paths, registry, tracking
    from llmops.data import preferences
    from llmops.data.snapshots.handle import Snapshots
    from llmops.model import loading
    from llmops.prompts import load_template
    from llmops.runs import record_step
    from llmops.train.preference import for_method

    training = method_training(cfg, params)
    pref_id, why = choose_preferences(cfg, params.get("preference_snapshot_id") or None, event_extras)
    rows = preferences.load(cfg, pref_id, "train")
    out_dir = paths.run_dir(cfg.name, run_id)
    champion = registry.champion_info(cfg.model_name)
    reference_adapter = reference_version = None
    if champion is not None:
        reference_version = champion["version"]
        reference_adapter = out_dir / "reference_adapter"
        if loading.missing_adapter_files(reference_adapter):
            reference_adapter = registry.download_adapter(champion, reference_adapter)
    dataset = Snapshots.of(cfg)  # read only: the eval snapshot is picked, never written (no last_n union)
    eval_snapshot = preferences.eval_snapshot(dataset, champion) or dataset.latest_id()
    template = load_template(cfg.prompt_template)
    base_model = params.get("base_model") or cfg.base_model
    log.info("%s on preference snapshot %s (%s): %d rows; reference: champion version %s; evaluated on snapshot %s",
             training.method, pref_id, why, len(rows), reference_version, eval_snapshot)
    lineage = lineage_of(cfg, run_id, eval_snapshot, base_model, template, training_method=training.method,
                         preference_snapshot_id=pref_id, reference_version=reference_version or "")
    mlflow_run = tracking.run_for_dag_run(cfg.name, run_id, tags=lineage)
    result = train_logged(cfg, for_method(training.method, reference_adapter, reference_version), rows,
                          training=training, template=template, lineage=lineage, mlflow_run=mlflow_run,
                          out_dir=out_dir, try_number=try_number)
    trained = Trained.from_xcom({**result, "snapshot_id": eval_snapshot, "snapshot_reason": why,
                                 "mlflow_run_id": mlflow_run, "base_model": base_model,
                                 "preference_snapshot_id": pref_id, "reference_version": reference_version,
                                 "preference_snapshot_uri": preferences.preference_snapshots(cfg).uri(pref_id)})
    record_step(cfg.name, run_id, "finetune", trained.to_xcom())
    return trained
