"""The feedback DAG's operator: one day's served answers and feedback as a preference snapshot."""

from __future__ import annotations

from llmops.operators.base import UseCaseOperator
from llmops.operators.common import preference_asset
from llmops.operators.data import run_partition


class PreferencesOperator(UseCaseOperator):
    """Join the prediction log and feedback of the run's day, validate, screen, snapshot; emit the preference Asset
    (skipped, with the row count, below ``feedback.min_rows``)."""

    ui_color = "#f3e8fd"

    def __init__(self, *, use_case: str, **kwargs):
        kwargs.setdefault("outlets", [preference_asset(use_case)])
        super().__init__(use_case=use_case, **kwargs)

    def run_step(self, context, cfg):
        from llmops.steps.feedback import build_preferences

        snap = build_preferences(cfg, partition_key=run_partition(context), run_id=context["run_id"])
        context["outlet_events"][preference_asset(self.use_case)].extra = snap.to_xcom()
        return snap
