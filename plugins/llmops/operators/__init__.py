"""Thin Airflow operators over the plain functions of llmops: the only package that imports Airflow."""

from llmops.operators.data import IngestOperator, SnapshotOperator, ValidateOperator
from llmops.operators.evaluation import EvaluateOperator, GateOperator
from llmops.operators.register import RegisterOperator, RollbackOperator
from llmops.operators.training import FinetuneOperator

__all__ = [
    "EvaluateOperator", "FinetuneOperator", "GateOperator", "IngestOperator", "RegisterOperator",
    "RollbackOperator", "SnapshotOperator", "ValidateOperator",
]
