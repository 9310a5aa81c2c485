"""One ``<use_case>__dataset`` DAG per include/use_cases/*.yaml: ingest -> validate -> snapshot.

Runs on the use case's cron schedule as a partitioned DAG (``CronPartitionTimetable``): each run ingests one
interval (its partition key), ``airflow backfill create`` makes one snapshot per past interval, and the snapshot
task emits the use case's dataset Asset with that partition key, which schedules ``<use_case>__finetune``. A run
without a key (``airflow dags test``) snapshots the whole source. A broken use-case file skips its own DAGs only
(see config_errors.py).
"""

from __future__ import annotations

from llmops.operators import IngestOperator, SnapshotOperator, ValidateOperator
from llmops.operators.common import dataset_timetable
from llmops.operators.dag_factory import use_case_dag, use_cases

for cfg in use_cases():
    with use_case_dag(cfg, "dataset", tag="dataset", description=f"Dataset snapshot for {cfg.name}: {cfg.description}",
                      schedule=dataset_timetable(cfg), doc_md=__doc__):
        ingest = IngestOperator(task_id="ingest", use_case=cfg.name)
        validate = ValidateOperator(task_id="validate", use_case=cfg.name, ingested=ingest.output)
        SnapshotOperator(task_id="snapshot", use_case=cfg.name, ingested=ingest.output, validation=validate.output)
