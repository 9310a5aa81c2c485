"""One ``<use_case>__feedback`` DAG per include/use_cases/*.yaml: served answers + user feedback -> preferences.

Runs daily (``feedback.schedule``) as a partitioned DAG: each run joins one day's feedback with the prediction
log into preference rows, validates them (great-expectations), screens them (safety filter, eval leakage) and
writes a content-addressed preference snapshot; ``airflow backfill create`` rebuilds past days, and a re-run
writes nothing new. With at least ``feedback.min_rows`` rows it emits the use case's preference Asset, which
schedules ``<use_case>__finetune`` when ``training.method`` is dpo or kto; below that the task is skipped and
says how many rows there are.
"""

from __future__ import annotations

from llmops.operators.common import feedback_timetable
from llmops.operators.dag_factory import use_case_dag, use_cases
from llmops.operators.feedback import PreferencesOperator

for cfg in use_cases():
    with use_case_dag(cfg, "feedback", tag="feedback", description=f"Preference data from feedback for {cfg.name}",
                      schedule=feedback_timetable(cfg), doc_md=__doc__):
        PreferencesOperator(task_id="preferences", use_case=cfg.name)
