"""Reciprocal rank fusion (Cormack et al., 2009): score(d) = sum over rankings of 1 / (rrf_k + rank(d)), ranks from
1. It needs no score calibration between BM25 and cosine, only the ranks."""

from __future__ import annotations


def rrf(rankings: list[list[int]], k: int, rrf_k: int = 60) -> list[tuple[int, float]]:
    """The top ``k`` (item, fused score) pairs; ties broken by the item, so the order is deterministic."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, item in enumerate(ranking, start=1):
            scores[item] = scores.get(item, 0.0) + 1.0 / (rrf_k + rank)
    return sorted(scores.items(), key=lambda kv: (-kv[1], kv[0]))[:k]
