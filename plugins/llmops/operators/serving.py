"""Operators that put the champion to work: batch predictions, the daily monitoring check, prompt comparison."""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException

from llmops.operators.base import UseCaseOperator


class BatchPredictOperator(UseCaseOperator):
    """Run the current `champion` over ``serving.batch_input``; a versioned, idempotent output."""

    def __init__(self, *, use_case: str, max_rows: int | None = None, **kwargs):
        super().__init__(use_case=use_case, **kwargs)
        self.max_rows = max_rows

    def run_step(self, context, cfg):
        from llmops.steps.batch_predict import batch_predict

        return batch_predict(cfg, max_rows=self.max_rows)

    def lineage_inputs(self, result=None):
        from llmops.lineage import steps
        from llmops.operators import lineage

        return steps.batch_predict_inputs(result, lineage.registry_uri())

    def lineage_outputs(self, result):
        from llmops.lineage import steps

        return steps.batch_predict_outputs(result)


class MonitorServingOperator(UseCaseOperator):
    """Compute the day's serving figures from the prediction log, write the report, fail on a crossed threshold."""

    other_template_fields = ("day",)

    def __init__(self, *, use_case: str, day: str = "{{ ds }}", **kwargs):
        super().__init__(use_case=use_case, **kwargs)
        self.day = day

    def run_step(self, context, cfg):
        from llmops.steps.monitor import monitor

        result = monitor(cfg, self.day)
        if result.breaches:
            raise AirflowFailException("monitoring threshold crossed: " + "; ".join(result.breaches)
                                       + f" (report: {result.report})")
        return result


class ComparePromptsOperator(UseCaseOperator):
    """Evaluate the champion with several prompt templates on the newest snapshot's eval split."""

    other_template_fields = ("templates",)

    def __init__(self, *, use_case: str, templates, **kwargs):
        super().__init__(use_case=use_case, **kwargs)
        self.templates = templates

    def run_step(self, context, cfg):
        from llmops.steps.compare_prompts import compare_prompts

        return compare_prompts(cfg, self.templates, run_id=context["run_id"])
