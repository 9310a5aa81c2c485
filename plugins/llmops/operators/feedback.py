"""The feedback DAG's operator: one day's served answers and feedback as a preference snapshot."""

from __future__ import annotations

from llmops.operators.base import UseCaseOperator
from llmops.operators.common import preference_asset
from llmops.operators.data import run_partition


class PreferencesOperator(UseCaseOperator):
    """Join the prediction log and feedback of the run's day, validate, screen, snapshot; emit the preference Asset
    (skipped, with the row count, below ``feedback.min_rows``). Its lineage: the prediction logs, the feedback file
    and the held-out dataset snapshot in, the preference snapshot out."""

    ui_color = "#f3e8fd"

    def __init__(self, *, use_case: str, **kwargs):
        kwargs.setdefault("outlets", [preference_asset(use_case)])
        super().__init__(use_case=use_case, **kwargs)

    def run_step(self, context, cfg):
        from llmops.steps.feedback import build_preferences

        prefs = build_preferences(cfg, partition_key=run_partition(context), run_id=context["run_id"])
        context["outlet_events"][preference_asset(self.use_case)].extra = prefs.to_xcom()
        return prefs

    def lineage_inputs(self, result=None):
        from llmops.lineage import steps

        return steps.preferences_inputs(result)

    def lineage_outputs(self, result):
        from llmops.data.preferences import preference_snapshots
        from llmops.lineage import steps

        return steps.preferences_outputs(result, preference_snapshots(self.config).store.manifest(
            result.preference_snapshot_id))
