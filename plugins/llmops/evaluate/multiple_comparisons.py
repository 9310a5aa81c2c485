"""Holm-Bonferroni for a sweep: the best of N trials has to beat the reference at the family-wise level.

Picking the best of N challengers and then testing it at the usual 95% inflates the false-pass rate (with N
trials that are all no better than the champion, one of them clears a 95% interval by luck far more often than 5%
of the time). Each finished trial gets a one-sided bootstrap p-value for "improves on the reference by more than
the margin" on the primary metric, from the same paired resampling as the gate's intervals
(:func:`llmops.evaluate.bootstrap.paired_bootstrap`): ``p = min(1, 2 * share of resampled mean improvements <=
margin)``, so ``p <= 1 - confidence`` exactly when the gate's two-sided CI lower bound clears the margin. Holm's
step-down then adjusts the p-values; the winner passes this rule only if its adjusted p-value is at most
``alpha = 1 - confidence``. Its interval is reported at the level Holm tests it at.
"""

from __future__ import annotations

import math

import numpy as np


def bootstrap_p_value(a, b, *, margin: float = 0.0, samples: int = 1000, seed: int = 0) -> float:
    """p-value of "mean(a - b) > margin" (a, b: paired per-example scores, larger is better), resampled exactly as
    :func:`~llmops.evaluate.bootstrap.paired_bootstrap` does (same seed, same draws). NaN when nothing pairs."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"paired scores need the same examples: {a.shape} vs {b.shape}")
    diff = a - b
    if diff.size == 0 or not np.isfinite(diff).all():
        return math.nan
    rng = np.random.default_rng(seed)
    means = np.empty(samples)
    chunk = max(1, 2_000_000 // diff.size)
    for start in range(0, samples, chunk):
        stop = min(samples, start + chunk)
        means[start:stop] = diff[rng.integers(0, diff.size, size=(stop - start, diff.size))].mean(axis=1)
    return float(min(1.0, 2 * np.mean(means <= margin)))


def holm(p_values: dict[str, float], alpha: float) -> dict[str, dict]:
    """Holm-Bonferroni step-down over ``{name: p}``. For each name: ``p``, ``rank`` (1 = smallest p),
    ``divisor`` (m - rank + 1: the level it is tested at is ``alpha / divisor``), ``adjusted`` (the Holm-adjusted
    p-value: the running maximum of ``min(1, divisor * p)`` in rank order) and ``rejected`` (adjusted <= alpha:
    the trial beats the reference at the family-wise level). A NaN p-value ranks last and is never rejected."""
    order = sorted(p_values, key=lambda n: (math.isnan(p_values[n]), p_values[n]))
    m, running, out = len(order), 0.0, {}
    for rank, name in enumerate(order, start=1):
        p = p_values[name]
        divisor = m - rank + 1
        running = math.nan if math.isnan(p) or math.isnan(running) else max(running, min(1.0, divisor * p))
        out[name] = {"p": p, "rank": rank, "divisor": divisor, "adjusted": running,
                     "rejected": not math.isnan(running) and running <= alpha}
    return out
