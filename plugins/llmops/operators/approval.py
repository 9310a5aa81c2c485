"""Optional human approval before `champion` moves: Airflow's human-in-the-loop ApprovalOperator (3.1+).

Asked only when the gate passed; a rejection skips `register`, so nothing is registered and the champion stays.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowSkipException

log = logging.getLogger(__name__)


class PromotionApprovalOperator(ApprovalOperator):
    """Shows the gate's decision and report path; Approve lets `register` run, Reject skips it."""

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "use_case", "decision", "trained")

    def __init__(self, *, use_case: str, decision, trained, **kwargs):
        kwargs.setdefault("subject", f"Promote the new {use_case} adapter to champion?")
        kwargs.setdefault("defaults", "Reject")  # a timeout rejects: nothing moves
        super().__init__(**kwargs)
        self.use_case = use_case
        self.decision = decision
        self.trained = trained

    def execute(self, context):
        from llmops.payloads import Decision

        decision = Decision.from_xcom(self.decision)
        if not decision.passed:
            raise AirflowSkipException("gate rejected: no approval needed")
        self.body = f"{decision.text}\n\nReport: `{decision.report}` (MLflow `{decision.report_artifact}`)"
        return super().execute(context)

    def execute_complete(self, context, event):
        # Record a rejection first: on Reject the parent skips `register` by raising, so nothing runs after it.
        if "error" not in event and list(event.get("chosen_options") or []) != [self.APPROVE]:
            from llmops import tracking
            from llmops.payloads import Trained
            from llmops.runs import record_step

            who = event.get("responded_by_user")
            record_step(self.use_case, context["run_id"], "register",
                        {"registered": False, "reasons": [f"approval rejected by {who}"]})
            run = Trained.from_xcom(self.trained).mlflow_run_id
            tracking.client().set_tag(run, "approval", f"rejected by {who}")
            tracking.end_run(run)
            log.info("rejected by %s: nothing registered, champion unchanged", who)
        return super().execute_complete(context, event)
