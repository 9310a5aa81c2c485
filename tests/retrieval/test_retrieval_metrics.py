"""Retrieval metrics on hand-made rankings with known values, and intervals from the project's bootstrap."""

from __future__ import annotations

import json
import math

import pytest

from llmops.errors import DataError
from llmops.retrieval import metrics


def test_recall_mrr_ndcg_on_a_hand_made_case():
    ranking = metrics.document_ranking(["a", "x", "a", "b", "y", "c"])  # passages -> documents, first passage wins
    assert ranking == ["a", "x", "b", "y", "c"]
    relevant = {"b", "c", "z"}
    assert metrics.recall_at(ranking, relevant, 3) == pytest.approx(1 / 3)
    assert metrics.recall_at(ranking, relevant, 5) == pytest.approx(2 / 3)
    assert metrics.mrr_at(ranking, relevant) == pytest.approx(1 / 3)  # first relevant at rank 3
    dcg = 1 / math.log2(4) + 1 / math.log2(6)  # relevant at ranks 3 and 5
    ideal = 1 / math.log2(2) + 1 / math.log2(3) + 1 / math.log2(4)  # three relevant, ideally at 1, 2, 3
    assert metrics.ndcg_at(ranking, relevant) == pytest.approx(dcg / ideal)
    assert metrics.mrr_at(["x"] * 10 + ["b"], {"b"}) == 0.0  # beyond the first 10 counts nothing
    assert metrics.ndcg_at(["b"], {"b"}) == 1.0


def test_per_question_means_and_intervals():
    values = metrics.per_question([["a", "b"], ["x", "y"], ["y", "a"], ["a"]], [["a"], ["a"], ["a"], ["a"]], k=1)
    assert values["recall@1"] == [1.0, 0.0, 0.0, 1.0] and values["mrr@10"] == [1.0, 0.0, 0.5, 1.0]
    summary = metrics.summarise(values, samples=500)
    assert summary["recall@1"]["mean"] == 0.5 and summary["mrr@10"]["mean"] == 0.625
    assert 0.0 <= summary["recall@1"]["low"] < 0.5 < summary["recall@1"]["high"] <= 1.0
    assert summary["recall@1"]["n"] == 4


def test_labelled_questions_errors_name_file_and_line(tmp_path):
    path = tmp_path / "q.jsonl"
    path.write_text(json.dumps({"question": "q?", "relevant": ["a"]}) + "\n" + json.dumps({"question": "q2"}) + "\n")
    with pytest.raises(DataError, match=r"q\.jsonl:2: needs a JSON object with question and relevant"):
        metrics.load_questions(path)
    path.write_text(json.dumps({"question": "q?", "relevant": []}) + "\n")
    with pytest.raises(DataError, match=r"q\.jsonl:1: question must be text and relevant a non-empty list"):
        metrics.load_questions(path)


def test_the_retrievers_side_by_side_on_a_real_index(embedder, rcfg, docs, questions):
    from llmops.retrieval.build import build_index
    from llmops.retrieval.search import open_index

    built = build_index("uc", "snap1", docs, rcfg, embedder)
    result = metrics.evaluate_index(open_index("uc", built["index_id"], embedder), questions, k=3, samples=200)
    for retriever in ("bm25", "dense", "hybrid"):
        for name in ("recall@3", "mrr@10", "ndcg@10"):
            interval = result["intervals"][f"retrieval.{retriever}.{name}"]
            assert interval["low"] <= interval["mean"] <= interval["high"] and interval["n"] == len(questions)
    # ten distinct topics, one question each: the real model finds each question's document first
    assert result["metrics"]["retrieval.dense.mrr@10"] >= 0.9
    assert result["metrics"]["retrieval.hybrid.recall@3"] == 1.0
    assert result["metrics"]["retrieval.mrr@10"] == result["metrics"]["retrieval.hybrid.mrr@10"]  # configured one
