"""Paired bootstrap confidence intervals for the difference of two models' mean per-example scores.

Both models were scored on the same examples, so we resample example indices once per replicate and take the
mean of the per-example differences: the pairing removes the between-example variance from the interval.
"""

from __future__ import annotations

import math

import numpy as np


def paired_bootstrap(a, b, *, samples: int = 1000, confidence: float = 0.95, seed: int = 0) -> dict:
    """CI of mean(a - b). Returns ``{"mean", "low", "high", "n"}``; NaN bounds when there is nothing to pair."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same examples: {a.shape} vs {b.shape}")
    diff = a - b
    if diff.size == 0 or not np.isfinite(diff).all():
        return {"mean": math.nan, "low": math.nan, "high": math.nan, "n": int(diff.size)}
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    chunk = max(1, 2_000_000 // diff.size)  # bounded memory for large eval sets
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        means[start:stop] = diff[rng.integers(0, diff.size, size=(stop - start, diff.size))].mean(axis=1)
    alpha = (1 - confidence) / 2
    low, high = np.quantile(means, [alpha, 1 - alpha])
    return {"mean": float(diff.mean()), "low": float(low), "high": float(high), "n": int(diff.size)}
