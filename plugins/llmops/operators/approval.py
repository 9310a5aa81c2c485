"""Optional human approval before `champion` moves: Airflow's human-in-the-loop ApprovalOperator (3.1+).

Asked only when the gate passed; a rejection skips `register`, so nothing is registered and the champion stays.
With a pairwise judge configured the task is in the DAG too, but asks only when the gate hands the decision to a
person (the judge's agreement with human labels is below ``min_kappa``); the reviewer can also say which of a
few judged answers they prefer, and those choices are appended to the use case's labels.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from airflow.providers.standard.operators.hitl import ApprovalOperator
from airflow.sdk.exceptions import AirflowSkipException

log = logging.getLogger(__name__)


def review_text(pairs: list[dict]) -> str:
    """The form's optional part: the judged pairs (:func:`llmops.evaluate.judging.review_pairs`) a reviewer may
    label, each a ``preference_N`` field."""
    lines = ["", "Optionally say which answer you prefer (fields `preference_N`: a, b or tie; `skip` leaves it "
             "out). Your choices are kept as new human labels for checking the judge."]
    for i, v in enumerate(pairs, 1):
        lines += ["", f"**Pair {i}**: {v['prompt']}", f"- a (challenger): {v['x']}", f"- b (reference): {v['y']}",
                  f"- judge: {v['score']} (1 = a, 0 = b, 0.5 = tie)"]
    return "\n".join(lines)


class PromotionApprovalOperator(ApprovalOperator):
    """Shows the gate's decision and report path; Approve lets `register` run, Reject skips it."""

    template_fields: Sequence[str] = (*ApprovalOperator.template_fields, "use_case", "decision", "trained")

    def __init__(self, *, use_case: str, decision, trained, always: bool = True, review_pairs: int = 0, **kwargs):
        from airflow.sdk import Param

        kwargs.setdefault("subject", f"Promote the new {use_case} adapter to champion?")
        kwargs.setdefault("defaults", "Reject")  # a timeout rejects: nothing moves
        if review_pairs:  # optional per-pair preferences: kept as new human labels for the judge
            fields = {f"preference_{i}": Param("skip", enum=["skip", "a", "b", "tie"], source="task")
                      for i in range(1, review_pairs + 1)}
            kwargs["params"] = fields  # the form's fields only (the DAG's params arrive here too; HITL drops them)
        super().__init__(**kwargs)
        self.use_case = use_case
        self.decision = decision
        self.trained = trained
        self.always = always
        self.review_pairs = review_pairs

    def execute(self, context):
        from llmops.payloads import Decision

        decision = Decision.from_xcom(self.decision)
        if not decision.passed:
            raise AirflowSkipException("gate rejected: no approval needed")
        if not self.always and not decision.details.get("needs_approval"):
            raise AirflowSkipException("the gate decided on a trusted judge: no approval needed")
        self.body = f"{decision.text}\n\nReport: `{decision.report}` (MLflow `{decision.report_artifact}`)"
        if self.review_pairs:
            from llmops.evaluate.judging import review_pairs

            self.body += review_text(review_pairs(decision.report))
        return super().execute(context)

    def execute_complete(self, context, event):
        if self.review_pairs and "error" not in event and event.get("params_input"):
            from llmops.evaluate.judging import labels_from_review
            from llmops.payloads import Decision

            n = labels_from_review(Decision.from_xcom(self.decision).to_xcom(), event["params_input"],
                                   event.get("responded_by_user"))
            log.info("kept %d reviewer choices as new human labels", n)
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
