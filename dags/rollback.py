"""One ``<use_case>__rollback`` DAG per include/use_cases/*.yaml: move the `champion` alias back.

Trigger it by hand; the Params form takes the version to make champion again (empty = the `previous` alias) and a
reason, kept as a tag on the version. The champion it replaces becomes `previous`, so a rollback can be undone.
The model Asset event it emits (extra: name, version, alias) lets serving reload. Same as
``python -m llmops.cli rollback --use-case <name> [--to-version N]``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from airflow.sdk import DAG, Param

from llmops.config import load_all
from llmops.operators import RollbackOperator

for cfg in load_all():
    with DAG(
        dag_id=f"{cfg.name}__rollback",
        description=f"Move the champion of {cfg.model_name} back to a chosen version",
        schedule=None,
        start_date=datetime(2026, 1, 5, tzinfo=UTC),
        catchup=False,
        max_active_runs=1,
        params={
            "version": Param("", type="string", title="Version",
                             description="Model version to make champion again. Empty: the `previous` alias."),
            "reason": Param("", type="string", title="Reason", description="Kept as a tag on the version."),
        },
        tags=["llmops", "rollback", cfg.name, *cfg.tags],
        default_args={"owner": cfg.owner, "retries": cfg.retries},  # a retry finds the alias already moved
        doc_md=__doc__,
    ) as dag:
        RollbackOperator(task_id="rollback", use_case=cfg.name, version="{{ params.version }}",
                         reason="{{ params.reason }}")
    globals()[dag.dag_id] = dag
