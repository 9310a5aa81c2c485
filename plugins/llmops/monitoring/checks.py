"""Daily serving figures and the thresholds that turn them into a pass or a failed check."""

from __future__ import annotations

import math

import pandas as pd

from llmops.config import MonitoringConfig
from llmops.monitoring.drift import psi, vocabulary_overlap


def daily_figures(requests: pd.DataFrame, train_prompts: pd.Series) -> dict:
    if requests.empty:
        return {"requests": 0}
    lat = requests["latency_ms"].astype(float)
    return {
        "requests": int(len(requests)),
        "p50_latency_ms": float(lat.quantile(0.5)),
        "p95_latency_ms": float(lat.quantile(0.95)),
        "p99_latency_ms": float(lat.quantile(0.99)),
        "block_rate": float(requests["blocked"].astype(bool).mean()),
        "recitation_rate": float(requests["recited"].astype(bool).mean()),
        "length_psi": psi(train_prompts.str.len(), requests["prompt"].astype(str).str.len()),
        "vocabulary_overlap": vocabulary_overlap(train_prompts.tolist(), requests["prompt"].astype(str).tolist()),
        "requests_per_version": {str(k): int(v) for k, v in requests["version"].astype(str).value_counts().items()},
    }


LIMITS = [("p95_latency_ms", "max_p95_latency_ms", "max"), ("block_rate", "max_block_rate", "max"),
          ("recitation_rate", "max_recitation_rate", "max"), ("length_psi", "max_length_psi", "max"),
          ("vocabulary_overlap", "min_vocabulary_overlap", "min")]


def breaches(figures: dict, cfg: MonitoringConfig) -> list[str]:
    """Every threshold the day's figures cross, as readable sentences (empty: all clear or no traffic)."""
    if not figures.get("requests"):
        return []
    out = []
    for metric, field, kind in LIMITS:
        limit, value = getattr(cfg, field), figures.get(metric)
        if limit is None or value is None or (isinstance(value, float) and math.isnan(value)):
            continue
        if (kind == "max" and value > limit) or (kind == "min" and value < limit):
            out.append(f"{metric} = {value:.4g} crosses {field} = {limit:g}")
    return out
