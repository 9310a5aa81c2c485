"""The finetune operator: :func:`llmops.train.finetune_step.run_finetune` for one DAG run (snapshot, LoRA, MLflow)."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from airflow.sdk import BaseOperator

from llmops.operators.common import fail_without_retry, load_config
from llmops.operators.lineage import ReportsLineage
from llmops.operators.links import MLflowRunLink

log = logging.getLogger(__name__)


class FinetuneOperator(ReportsLineage, BaseOperator):
    """LoRA fine-tuning on a snapshot's train split; pushes the adapter path and the MLflow run id."""

    template_fields: Sequence[str] = ("use_case",)
    ui_color = "#f3e8fd"
    operator_extra_links = (MLflowRunLink(),)

    def __init__(self, *, use_case: str, **kwargs):
        super().__init__(**kwargs)
        self.use_case = use_case

    def execute(self, context):
        from llmops.runs import record_step
        from llmops.train.finetune_step import run_finetune

        cfg = load_config(self.use_case)
        events = [e.extra or {} for evs in (context.get("triggering_asset_events") or {}).values() for e in evs]
        with fail_without_retry():  # a crafted snapshot id, a missing snapshot, a budget: no retry
            trained = run_finetune(cfg, params=context["params"], event_extras=events, run_id=context["run_id"],
                                   try_number=getattr(context.get("ti"), "try_number", 1) or 1).to_xcom()
        record_step(self.use_case, context["run_id"], "finetune", trained)
        return trained

    def lineage_of(self, result):
        from llmops.lineage import steps
        from llmops.operators import lineage

        return steps.finetune(
            result, lineage.trained_snapshot_uri(self.use_case, result), lineage.registry_uri())
