"""The training operators, one per kind of method: :class:`FinetuneOperator` runs
:func:`llmops.steps.finetune.run_finetune` (SFT on a dataset snapshot), :class:`PreferenceTuneOperator` runs
:func:`llmops.steps.preference_tune.run_preference_tune` (DPO / KTO on a preference snapshot, on top of the
champion). The finetune DAG picks one by ``training.method``; both push a :class:`~llmops.payloads.Trained`."""

from __future__ import annotations

from llmops.operators.base import UseCaseOperator
from llmops.operators.links import MLflowRunLink


def _step_arguments(context) -> dict:
    events = [e.extra or {} for evs in (context.get("triggering_asset_events") or {}).values() for e in evs]
    return {"params": context["params"], "event_extras": events, "run_id": context["run_id"],
            "try_number": getattr(context.get("ti"), "try_number", 1) or 1}


class FinetuneOperator(UseCaseOperator):
    """LoRA fine-tuning on a snapshot's train split; pushes the adapter path and the MLflow run id."""

    ui_color = "#f3e8fd"
    operator_extra_links = (MLflowRunLink(),)

    def run_step(self, context, cfg):
        from llmops.steps.finetune import run_finetune

        return run_finetune(cfg, **_step_arguments(context))

    def lineage_inputs(self, result=None):  # which snapshot is decided inside execute
        from llmops.lineage import steps
        from llmops.operators import lineage

        if result is None:
            return []
        return steps.finetune_inputs(result, lineage.snapshot_uri(self.config, result.snapshot_id))

    def lineage_outputs(self, result):
        from llmops.lineage import steps
        from llmops.operators import lineage

        return steps.finetune_outputs(result, lineage.registry_uri())


class PreferenceTuneOperator(FinetuneOperator):
    """DPO / KTO on a preference snapshot, on top of the champion's adapter; pushes what FinetuneOperator does."""

    def run_step(self, context, cfg):
        from llmops.steps.preference_tune import run_preference_tune

        return run_preference_tune(cfg, **_step_arguments(context))
