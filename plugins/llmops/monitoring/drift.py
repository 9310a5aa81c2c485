"""Input drift of requests against the training snapshot: prompt length (PSI) and vocabulary overlap."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from llmops.evaluate.metrics import normalize


def psi(expected: Sequence[float], actual: Sequence[float], bins: int = 10) -> float:
    """Population stability index of ``actual`` against ``expected`` on the expected's quantile bins."""
    expected, actual = np.asarray(expected, dtype=float), np.asarray(actual, dtype=float)
    if len(expected) == 0 or len(actual) == 0:
        return float("nan")
    edges = np.unique(np.quantile(expected, np.linspace(0, 1, bins + 1)))
    edges[0], edges[-1] = -np.inf, np.inf
    e = np.histogram(expected, edges)[0] / len(expected)
    a = np.histogram(actual, edges)[0] / len(actual)
    e, a = np.clip(e, 1e-4, None), np.clip(a, 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def vocabulary_overlap(train_prompts: Sequence[str], requests: Sequence[str]) -> float:
    """Share of request word occurrences whose word appears in the training prompts."""
    vocab = {w for p in train_prompts for w in normalize(p).split()}
    words = [w for r in requests for w in normalize(r).split()]
    return sum(w in vocab for w in words) / len(words) if words else math.nan
