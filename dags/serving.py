"""Per use case: ``<use_case>__batch_predict`` (on each registered model, when ``serving.batch_input`` is set)
and ``<use_case>__monitoring`` (daily: latency, block and recitation rates, input drift; a crossed threshold
fails the check task, so the DAG's failure alerting fires), and ``<use_case>__compare_prompts`` (manual: the
champion evaluated with several prompt templates from include/prompts/ on the same eval rows, side by side)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Param

from llmops.config import load_all
from llmops.operators.common import model_asset
from llmops.operators.serving import BatchPredictOperator, ComparePromptsOperator, MonitorServingOperator

for cfg in load_all():
    default_args = {"owner": cfg.owner, "retries": cfg.retries, "retry_delay": timedelta(minutes=1)}
    if cfg.serving.batch_input:
        with DAG(
            dag_id=f"{cfg.name}__batch_predict",
            description=f"Batch predictions of the champion for {cfg.name}",
            schedule=model_asset(cfg.name),
            start_date=datetime(2026, 1, 5, tzinfo=UTC),
            catchup=False,
            max_active_runs=1,
            tags=["llmops", "serving", cfg.name, *cfg.tags],
            default_args=default_args,
            doc_md=__doc__,
        ) as dag:
            BatchPredictOperator(task_id="batch_predict", use_case=cfg.name)
        globals()[dag.dag_id] = dag
    with DAG(
        dag_id=f"{cfg.name}__monitoring",
        description=f"Serving monitoring for {cfg.name}",
        schedule=cfg.serving.monitoring.schedule,
        start_date=datetime(2026, 1, 5, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        tags=["llmops", "monitoring", cfg.name, *cfg.tags],
        default_args=default_args,
        doc_md=__doc__,
    ) as dag:
        MonitorServingOperator(task_id="check_serving", use_case=cfg.name)
    globals()[dag.dag_id] = dag
    with DAG(
        dag_id=f"{cfg.name}__compare_prompts",
        description=f"Prompt templates side by side for the {cfg.name} champion",
        schedule=None,
        start_date=datetime(2026, 1, 5, tzinfo=UTC),
        catchup=False,
        render_template_as_native_obj=True,
        params={"templates": Param([cfg.prompt_template], type="array", items={"type": "string"},
                                   title="Prompt templates", description="Files in include/prompts/ to compare")},
        tags=["llmops", "prompts", cfg.name, *cfg.tags],
        default_args=default_args,
        doc_md=__doc__,
    ) as dag:
        ComparePromptsOperator(task_id="compare_prompts", use_case=cfg.name, templates="{{ params.templates }}")
    globals()[dag.dag_id] = dag
