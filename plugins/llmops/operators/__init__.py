"""Thin Airflow operators over :mod:`llmops.steps`: each reads its use case's config, calls one step function and
pushes the step's typed payload (:class:`llmops.operators.base.UseCaseOperator`). Airflow's task API is used only
in this package; the plain functions import and are tested without a running Airflow."""

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
