"""Per use case: ``<use_case>__batch_predict`` (on each registered model, when ``serving.batch_input`` is set)
and ``<use_case>__monitoring`` (daily: latency, block and recitation rates, input drift; a crossed threshold
fails the check task, so the DAG's failure alerting fires), and ``<use_case>__compare_prompts`` (manual: the
champion evaluated with several prompt templates from include/prompts/ on the same eval rows, side by side)."""

from __future__ import annotations

from airflow.sdk import Param

from llmops import names
from llmops.operators.common import model_asset
from llmops.operators.dag_factory import use_case_dag, use_cases
from llmops.operators.serving import BatchPredictOperator, ComparePromptsOperator, MonitorServingOperator

for cfg in use_cases():
    if cfg.serving.batch_input:
        with use_case_dag(cfg, "batch_predict", tag="serving",
                          description=f"Batch predictions of the champion for {cfg.name}",
                          schedule=model_asset(cfg.name), doc_md=__doc__):
            BatchPredictOperator(task_id="batch_predict", use_case=cfg.name)
    with use_case_dag(cfg, "monitoring", tag="monitoring", description=f"Serving monitoring for {cfg.name}",
                      schedule=cfg.serving.monitoring.schedule, doc_md=__doc__):
        MonitorServingOperator(task_id="check_serving", use_case=cfg.name)
    with use_case_dag(
        cfg, "compare_prompts", tag="prompts", description=f"Prompt templates side by side for the {cfg.name} champion",
        max_active_runs=16, render_template_as_native_obj=True, doc_md=__doc__,
        params={"templates": Param([cfg.prompt_template], type="array",
                                   items={"type": "string", "maxLength": 200,
                                          "pattern": names.param_pattern(names.TEMPLATE_PARAM_RE)},
                                   title="Prompt templates", description="Files in include/prompts/ to compare")},
    ):
        ComparePromptsOperator(task_id="compare_prompts", use_case=cfg.name, templates="{{ params.templates }}")
