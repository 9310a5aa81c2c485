"""One ``<use_case>__dataset`` DAG per include/use_cases/*.yaml: ingest -> validate -> snapshot.

Runs on the use case's cron schedule as a partitioned DAG (``CronPartitionTimetable``): each run ingests one
interval (its partition key), ``airflow backfill create`` makes one snapshot per past interval, and the snapshot
task emits the use case's dataset Asset with that partition key, which schedules ``<use_case>__finetune``. A run
without a key (``airflow dags test``) snapshots the whole source. A bad use-case file is an import error naming the file and the field.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG

from llmops.config import load_all
from llmops.operators import IngestOperator, SnapshotOperator, ValidateOperator
from llmops.operators.common import dataset_timetable

for cfg in load_all():
    with DAG(
        dag_id=f"{cfg.name}__dataset",
        description=f"Dataset snapshot for {cfg.name}: {cfg.description}",
        schedule=dataset_timetable(cfg),
        start_date=datetime(2026, 1, 5, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        tags=["llmops", "dataset", cfg.name, *cfg.tags],
        default_args={"owner": cfg.owner, "retries": cfg.retries, "retry_delay": timedelta(minutes=1)},
        doc_md=__doc__,
    ) as dag:
        ingest = IngestOperator(task_id="ingest", use_case=cfg.name)
        validate = ValidateOperator(task_id="validate", use_case=cfg.name, ingested=ingest.output)
        SnapshotOperator(task_id="snapshot", use_case=cfg.name, ingested=ingest.output, validation=validate.output)
    globals()[dag.dag_id] = dag
