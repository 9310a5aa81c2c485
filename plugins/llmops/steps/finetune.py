"""The finetune step (``training.method: sft``) as a plain function: pick the snapshot, open the DAG run's MLflow
run, train, log. Its lineage and its logged training (:func:`lineage_of`, :func:`train_logged`) serve the
preference step (:mod:`llmops.steps.preference_tune`) too.

The ``finetune`` operator only hands it the config, the run's Params and triggering events, and pushes the
:class:`~llmops.payloads.Trained` payload; everything here is tested without Airflow.
"""

from __future__ import annotations

import logging

from llmops import names
from llmops.config import TrainingConfig, UseCaseConfig
from llmops.errors import ConfigError
from llmops.payloads import Trained

log = logging.getLogger(__name__)


def effective_training(cfg: UseCaseConfig, params: dict) -> TrainingConfig:
    """The use case's training config with the run's Params (epochs, learning rate, LoRA rank) applied."""
    training = cfg.training
    lora = training.lora
    if params.get("lora_rank"):
        lora = lora.model_copy(update={"r": int(params["lora_rank"])})
    update = {"lora": lora}
    if params.get("epochs"):
        update["epochs"] = float(params["epochs"])
    if params.get("learning_rate"):
        update["learning_rate"] = float(params["learning_rate"])
    return training.model_copy(update=update)


def lineage_of(cfg: UseCaseConfig, run_id: str, snapshot_id: str, base_model: str, template, **extra) -> dict:
    """What the MLflow run's tags and the adapter's metadata record about a training run's inputs."""
    from llmops.model import loading
    from llmops.version import code_version

    return {
        "use_case": cfg.name, "dag_run_id": run_id, "snapshot_id": snapshot_id,
        "base_model": base_model, "base_model_revision": loading.base_revision(base_model, cfg.base_model_revision),
        "prompt_template": cfg.prompt_template, "prompt_template_hash": template.hash,
        "config_hash": cfg.config_hash(), "code_version": code_version(), **extra,
    }


def train_logged(cfg: UseCaseConfig, method, rows, *, training: TrainingConfig, template, lineage: dict,
                 mlflow_run: str, out_dir, try_number: int = 1) -> dict:
    """Train ``method`` (:mod:`llmops.train.lora`'s SFT, :mod:`llmops.train.preference`'s DPO / KTO) through the
    launcher (torchrun on several GPUs), with its settings, progress and outcome logged to ``mlflow_run``."""
    from llmops import tracking
    from llmops.model.identity import identify
    from llmops.train import launcher

    tracking.log_params(mlflow_run, {**lineage, **{f"training.{k}": v for k, v in
                                                   training.model_dump(mode="json").items()}})
    if try_number and try_number > 1:
        log.info("try %d: resuming from the newest complete checkpoint of this DAG run, if any", try_number)
    result = launcher.train(
        rows, method=method, base_model=lineage["base_model"], revision=cfg.base_model_revision, template=template,
        training=training, out_dir=out_dir, mlflow_run_id=mlflow_run, trust_remote_code=cfg.trust_remote_code,
        metadata={**lineage, "prompt_template_text": template.text, "training": training.model_dump(mode="json"),
                  "base_identity": identify(lineage["base_model"], cfg.base_model_revision)},  # not a path
        on_log=lambda step, m: tracking.log_metrics(mlflow_run, {f"train_{k}": v for k, v in m.items()}, step),
    )
    tracking.log_metrics(mlflow_run, {
        "train_loss_mean": result["train_loss"], "train_seconds": result["seconds"],
        "gpu_hours": result["gpu_hours"], "train_tokens_per_s_mean": result["tokens_per_s"],
        "estimated_gpu_hours": result["estimate"]["gpu_hours"]})
    tracking.log_params(mlflow_run, {**{f"train.{k}": result[k] for k in ("precision", "attention", "batching",
                                                                         "world_size") if k in result},
                                     "base_model_commit": result.get("base_model_commit") or ""})
    return result


def run_finetune(cfg: UseCaseConfig, *, params: dict, event_extras: list[dict], run_id: str,
                 try_number: int = 1, trial: dict | None = None) -> Trained:
    """Train a LoRA adapter (``training.method: sft``) for one DAG run. A pinned ``snapshot_id`` is checked by its
    shape before anything is read; a retry of the same run resumes from its newest complete checkpoint. DPO / KTO
    are :func:`llmops.steps.preference_tune.run_preference_tune`'s.

    ``trial`` (a sweep's, :mod:`llmops.steps.sweep`): its overrides on top of the Params, its own folder
    (``<run dir>/trials/<name>``, so a retried trial resumes from its own checkpoints) and its own MLflow run,
    nested under the DAG run's; the snapshot is the one the sweep's plan chose."""
    from llmops import paths, tracking
    from llmops.data.snapshots.handle import Snapshots
    from llmops.prompts import load_template
    from llmops.runs import record_step
    from llmops.train.lora import SFT

    if cfg.training.method != "sft":
        raise ConfigError(f"training.method {cfg.training.method}: the finetune step trains sft only; preference "
                          "tuning is llmops.steps.preference_tune.run_preference_tune (PreferenceTuneOperator)")
    pinned = (trial or {}).get("snapshot_id") or params.get("snapshot_id")
    pinned = names.snapshot_id(pinned, "params.snapshot_id") if pinned not in (None, "") else None
    snapshots = Snapshots.of(cfg)
    snapshot_id, why = snapshots.choose(pinned, event_extras)
    template = load_template(cfg.prompt_template)
    log.info("training on snapshot %s (%s)", snapshot_id, why)
    training = effective_training(cfg, params)
    if trial is not None:
        from llmops.train.sweep import apply

        training = apply(training, trial["overrides"]).model_copy(update={"sweep": None})
    base_model = params.get("base_model") or cfg.base_model
    lineage = lineage_of(cfg, run_id, snapshot_id, base_model, template)
    if trial is None:
        mlflow_run, out_dir = tracking.run_for_dag_run(cfg.name, run_id, tags=lineage), paths.run_dir(cfg.name, run_id)
    else:
        lineage["sweep_trial"] = trial["name"]
        mlflow_run = tracking.run_for_trial(cfg.name, run_id, trial["name"], tags=lineage)
        out_dir = paths.trial_dir(cfg.name, run_id, trial["name"])
    train_rows = snapshots.split_path(snapshot_id, "train")  # read memory-mapped, in load_split's canonical order
    result = train_logged(cfg, SFT(), train_rows, training=training, template=template, lineage=lineage,
                          mlflow_run=mlflow_run, out_dir=out_dir, try_number=try_number)
    trained = Trained.from_xcom({**result, "snapshot_id": snapshot_id, "snapshot_reason": why,
                                 "mlflow_run_id": mlflow_run, "base_model": base_model})
    record_step(cfg.name, run_id, "finetune" if trial is None else f"finetune[{trial['name']}]", trained.to_xcom())
    return trained
