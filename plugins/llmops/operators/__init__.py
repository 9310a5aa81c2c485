"""Thin Airflow operators over :mod:`llmops.steps`: each reads its use case's config once per try, calls one step
function and pushes the step's typed payload (:class:`llmops.operators.base.UseCaseOperator`). Airflow's task API
is used only in this package; the plain functions import and are tested without a running Airflow.

One module per DAG kind's operators: ``data`` (dataset), ``training``, ``evaluation``, ``register`` (finetune and
rollback), ``sweep`` (a sweep's plan, references, trials, gate and registration), ``approval`` (the human approval
before promotion, Airflow's HITL ``ApprovalOperator``), ``feedback``, ``export``, ``serving``, ``index``. Beside
them: ``base`` and ``common`` (config, assets, errors to task states), ``dag_factory`` (what every use-case DAG
shares), ``lineage`` and ``links`` (OpenLineage and extra links). The dataset, finetune and rollback DAGs' operators
are named here too.
"""

from llmops.operators.data import IngestOperator, SnapshotOperator, ValidateOperator
from llmops.operators.evaluation import EvaluateOperator, GateOperator
from llmops.operators.register import RegisterOperator, RollbackOperator
from llmops.operators.serving import BatchPredictOperator, ComparePromptsOperator, MonitorServingOperator
from llmops.operators.training import FinetuneOperator, PreferenceTuneOperator

__all__ = [
    "BatchPredictOperator", "ComparePromptsOperator", "EvaluateOperator", "FinetuneOperator", "GateOperator",
    "IngestOperator", "MonitorServingOperator", "PreferenceTuneOperator", "RegisterOperator", "RollbackOperator",
    "SnapshotOperator", "ValidateOperator",
]
