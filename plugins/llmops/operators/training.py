"""The finetune operator: picks the snapshot, trains a LoRA adapter, logs the run to MLflow."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from llmops.operators.common import fail_without_retry, load_config

log = logging.getLogger(__name__)


def effective_training(cfg, params: dict):
    """The use case's training config with the run's Params (epochs, learning rate, LoRA rank) applied."""
    training = cfg.training
    lora = training.lora.model_copy(update={"r": int(params["lora_rank"])}) if params.get("lora_rank") else training.lora
    update = {"lora": lora}
    if params.get("epochs"):
        update["epochs"] = float(params["epochs"])
    if params.get("learning_rate"):
        update["learning_rate"] = float(params["learning_rate"])
    return training.model_copy(update=update)


class FinetuneOperator(BaseOperator):
    """LoRA fine-tuning on a snapshot's train split; pushes the adapter path and the MLflow run id."""

    template_fields: Sequence[str] = ("use_case",)
    ui_color = "#f3e8fd"

    def __init__(self, *, use_case: str, **kwargs):
        super().__init__(**kwargs)
        self.use_case = use_case

    def execute(self, context):
        from llmops import paths, tracking
        from llmops.data.snapshot import choose_snapshot, load_split
        from llmops.prompts import load_template
        from llmops.runs import record_step
        from llmops.train import launcher
        from llmops.train.budget import BudgetExceeded
        from llmops.version import code_version

        cfg = load_config(self.use_case)
        params = context["params"]
        events = [e.extra or {} for evs in (context.get("triggering_asset_events") or {}).values() for e in evs]
        with fail_without_retry():
            snapshot_id, why = choose_snapshot(self.use_case, params.get("snapshot_id") or None, events)
            template = load_template(cfg.prompt_template)
        log.info("training on snapshot %s (%s)", snapshot_id, why)
        training = effective_training(cfg, params)
        base_model = params.get("base_model") or cfg.base_model
        run_id = context["run_id"]
        lineage = {
            "use_case": self.use_case, "dag_run_id": run_id, "snapshot_id": snapshot_id,
            "base_model": base_model, "base_model_revision": cfg.base_model_revision or "",
            "prompt_template": cfg.prompt_template, "prompt_template_hash": template.hash,
            "config_hash": cfg.config_hash(), "code_version": code_version(),
        }
        mlflow_run = tracking.run_for_dag_run(self.use_case, run_id, tags=lineage)
        tracking.log_params(mlflow_run, {**lineage, **{f"training.{k}": v for k, v in
                                                       training.model_dump(mode="json").items()}})
        train_rows = load_split(self.use_case, snapshot_id, "train")
        try_number = getattr(context.get("ti"), "try_number", 1)
        if try_number and try_number > 1:
            log.info("try %d: resuming from the newest complete checkpoint of this DAG run, if any", try_number)
        try:
            with fail_without_retry():
                result = launcher.train(
                    train_rows, base_model=base_model, revision=cfg.base_model_revision, template=template,
                    training=training, out_dir=paths.run_dir(self.use_case, run_id), mlflow_run_id=mlflow_run,
                    trust_remote_code=cfg.trust_remote_code,
                    metadata={**lineage, "prompt_template_text": template.text,
                              "training": training.model_dump(mode="json")},
                    on_log=lambda step, m: tracking.log_metrics(mlflow_run, {f"train_{k}": v for k, v in m.items()},
                                                                step),
                )
        except BudgetExceeded as e:
            raise AirflowFailException(f"BudgetExceeded: {e}") from None
        tracking.log_metrics(mlflow_run, {
            "train_loss_mean": result["train_loss"], "train_seconds": result["seconds"],
            "gpu_hours": result["gpu_hours"], "train_tokens_per_s_mean": result["tokens_per_s"],
            "estimated_gpu_hours": result["estimate"]["gpu_hours"]})
        tracking.log_params(mlflow_run, {"train.precision": result["precision"], "train.attention": result["attention"],
                                         "train.batching": result["batching"], "train.world_size": result["world_size"],
                                         "base_model_commit": result.get("base_model_commit") or ""})
        out = {**result, "snapshot_id": snapshot_id, "snapshot_reason": why, "mlflow_run_id": mlflow_run,
               "base_model": base_model}
        record_step(self.use_case, run_id, "finetune", out)
        return out
