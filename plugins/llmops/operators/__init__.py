"""Thin Airflow operators over the plain functions of llmops. Airflow's task API is used here only; elsewhere
Airflow is imported just for the Google provider's hooks (``llmops.data.sources.hooks``), inside the functions
that need them, so the plain functions import and are tested without a running Airflow."""

from llmops.operators.data import IngestOperator, SnapshotOperator, ValidateOperator
from llmops.operators.evaluation import EvaluateOperator, GateOperator
from llmops.operators.register import RegisterOperator, RollbackOperator
from llmops.operators.training import FinetuneOperator

__all__ = [
    "EvaluateOperator", "FinetuneOperator", "GateOperator", "IngestOperator", "RegisterOperator",
    "RollbackOperator", "SnapshotOperator", "ValidateOperator",
]
