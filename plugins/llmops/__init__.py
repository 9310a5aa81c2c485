"""LLMOps on Airflow: dataset snapshots, LoRA fine-tuning, evaluation, gating and an MLflow registry.

Everything except ``llmops.operators`` imports without Airflow, so the logic is testable on its own.
"""

__version__ = "0.1.0"
