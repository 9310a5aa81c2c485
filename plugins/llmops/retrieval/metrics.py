"""Retrieval quality on labelled questions: recall@k, MRR@10, nDCG@10, each with a bootstrap interval, and the
retrievers side by side.

A labelled question names the *documents* that answer it (``relevant``: document keys), so the labels survive a
change of chunking. A ranking of passages becomes a ranking of documents by each document's first passage; then,
with binary relevance:

- recall@k: the share of the relevant documents found in the first k;
- MRR@10: 1 / rank of the first relevant document within the first 10 (0 if none);
- nDCG@10: sum over relevant ranks r <= 10 of 1 / log2(r + 1), divided by the same sum for an ideal ranking.

Each metric is the mean over questions; its interval is a bootstrap over questions (``paired_bootstrap`` against
zero, the project's one bootstrap), and the per-question values are kept for the gate's paired CIs.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

from llmops import paths
from llmops.errors import DataError
from llmops.evaluate.bootstrap import paired_bootstrap

DEPTH = 10


def load_questions(path: str | Path) -> list[dict]:
    """``{"question", "relevant": [document keys]}`` per JSONL line; a bad line names the file and line."""
    path = paths.resolve(path)
    out = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise DataError(f"retrieval.questions: cannot read {path}: {e}") from None
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            question, relevant = row["question"], row["relevant"]
        except (ValueError, KeyError, TypeError) as e:
            raise DataError(f"{path}:{n}: needs a JSON object with question and relevant ({e})") from None
        if not isinstance(question, str) or not question.strip() or not isinstance(relevant, list) or not relevant:
            raise DataError(f"{path}:{n}: question must be text and relevant a non-empty list of document keys")
        out.append({"question": question, "relevant": [str(r) for r in relevant]})
    if not out:
        raise DataError(f"{path}: no labelled questions")
    return out


def document_ranking(doc_keys: list[str]) -> list[str]:
    """Passages' document keys in rank order -> documents in rank order (each at its first passage)."""
    return list(dict.fromkeys(doc_keys))


def recall_at(ranking: list[str], relevant: set[str], k: int) -> float:
    return len(set(ranking[:k]) & relevant) / len(relevant)


def mrr_at(ranking: list[str], relevant: set[str], k: int = DEPTH) -> float:
    return next((1.0 / r for r, d in enumerate(ranking[:k], start=1) if d in relevant), 0.0)


def ndcg_at(ranking: list[str], relevant: set[str], k: int = DEPTH) -> float:
    dcg = sum(1.0 / math.log2(r + 1) for r, d in enumerate(ranking[:k], start=1) if d in relevant)
    ideal = sum(1.0 / math.log2(r + 1) for r in range(1, min(len(relevant), k) + 1))
    return dcg / ideal


def per_question(rankings: list[list[str]], labels: list[list[str]], k: int) -> dict[str, list[float]]:
    """Per-question values of recall@k, mrr@10, ndcg@10 for document rankings against their labels."""
    out: dict[str, list[float]] = {f"recall@{k}": [], "mrr@10": [], "ndcg@10": []}
    for ranking, relevant in zip(rankings, labels, strict=True):
        rel = set(relevant)
        out[f"recall@{k}"].append(recall_at(ranking, rel, k))
        out["mrr@10"].append(mrr_at(ranking, rel))
        out["ndcg@10"].append(ndcg_at(ranking, rel))
    return out


def summarise(values: dict[str, list[float]], *, samples: int = 1000, seed: int = 0) -> dict[str, dict]:
    """Mean and 95% bootstrap interval of each metric over questions."""
    out = {}
    for name, v in values.items():
        ci = paired_bootstrap(v, np.zeros(len(v)), samples=samples, seed=seed)
        out[name] = {"mean": ci["mean"], "low": ci["low"], "high": ci["high"], "n": ci["n"]}
    return out


def evaluate_index(index, questions: list[dict], k: int, retrievers=("bm25", "dense", "hybrid"), *,
                   samples: int = 1000) -> dict:
    """Every retriever on the same questions, side by side. Returns ``{"metrics": {flat name: mean},
    "intervals": {flat name: {mean, low, high, n}}, "per_question": {flat name: [...]}}``; flat names are
    ``retrieval.<retriever>.<metric>``, and the index's configured retriever's also ``retrieval.<metric>``."""
    labels = [q["relevant"] for q in questions]
    depth = max(k, DEPTH)
    metrics, intervals, per_q = {}, {}, {}
    texts = [q["question"] for q in questions]
    vectors = index.encode(texts) if set(retrievers) - {"bm25"} else None  # once, for dense and hybrid
    keys = index.chunks["doc_key"].astype(str).tolist()
    rrf_k = index.manifest["retriever"].get("rrf_k", 60)
    for retriever in retrievers:
        ranked = index.rows(texts, retriever, depth * 3, rrf_k=rrf_k, vectors=vectors)  # several per document
        rankings = [document_ranking([keys[r] for r, _ in rows]) for rows in ranked]
        values = per_question(rankings, labels, k)
        for name, summary in summarise(values, samples=samples).items():
            flat = f"retrieval.{retriever}.{name}"
            metrics[flat], intervals[flat], per_q[flat] = summary["mean"], summary, values[name]
    configured = index.manifest["retriever"]["kind"]
    for flat in list(metrics):
        if flat.startswith(f"retrieval.{configured}."):
            short = "retrieval." + flat.split(".", 2)[2]
            metrics[short], intervals[short], per_q[short] = metrics[flat], intervals[flat], per_q[flat]
    return {"metrics": metrics, "intervals": intervals, "per_question": per_q, "questions": len(questions),
            "index_id": index.index_id, "k": k}
