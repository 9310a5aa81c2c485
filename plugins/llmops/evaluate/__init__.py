"""Evaluation: metrics for base and tuned models, the gate that decides, and reports."""
