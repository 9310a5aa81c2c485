"""One ``<use_case>__rollback`` DAG per include/use_cases/*.yaml: move the `champion` alias back.

Trigger it by hand; the Params form takes the version to make champion again (empty = the `previous` alias) and a
reason, kept as a tag on the version. The champion it replaces becomes `previous`, so a rollback can be undone.
The model Asset event it emits (extra: name, version, alias) lets serving reload. Same as
``python -m llmops.cli rollback --use-case <name> [--to-version N]``.
"""

from __future__ import annotations

from airflow.sdk import Param

from llmops import names
from llmops.operators import RollbackOperator
from llmops.operators.dag_factory import use_case_dag, use_cases

for cfg in use_cases():
    with use_case_dag(
        cfg, "rollback", tag="rollback", description=f"Move the champion of {cfg.model_name} back to a chosen version",
        params={
            "version": Param("", type="string", title="Version",
                             pattern=names.param_pattern(names.VERSION_RE, optional=True),
                             description="Model version to make champion again. Empty: the `previous` alias."),
            "reason": Param("", type="string", title="Reason", description="Kept as a tag on the version."),
        },
        doc_md=__doc__,  # a retry finds the alias already moved
    ):
        RollbackOperator(task_id="rollback", use_case=cfg.name, version="{{ params.version }}",
                         reason="{{ params.reason }}")
