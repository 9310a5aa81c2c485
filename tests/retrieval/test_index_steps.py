"""The index DAG's steps end to end on a real corpus file: corpus snapshot (validated), build, evaluate (an MLflow
run tagged with the index id), gate, publish; a second run writes nothing; a worse index is refused."""

from __future__ import annotations

import json

import pytest
from retrieval_cases import QUESTIONS, TOPICS

from llmops.config import load_use_case
from llmops.errors import NothingToDo
from llmops.retrieval import build as builds
from llmops.retrieval import live
from llmops.steps import index as steps


@pytest.fixture
def rag_use_case(tmp_path, use_case_file, embedder, monkeypatch, backend):
    import llmops.retrieval.embedding as embedding

    monkeypatch.setattr(embedding, "load", lambda ref, revision=None: embedder)  # the session's loaded model
    corpus = tmp_path / "corpus.jsonl"
    corpus.write_text("".join(json.dumps({"key": k, "text": t}) + "\n" for k, t in TOPICS.items()))
    questions = tmp_path / "questions.jsonl"
    questions.write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    retrieval = {"corpus": {"source": {"path": str(corpus), "prompt_column": "key", "response_column": "text",
                                       "allowed_roots": [str(tmp_path)]},
                            "expectation_suite": "include/expectations/corpus_documents.json"},
                 "chunking": {"size": 24, "overlap": 6}, "retriever": {"kind": "hybrid", "k": 3},
                 "questions": str(questions),
                 "gate": {"rules": [{"metric": "retrieval.recall@3", "min": 0.8},
                                    {"metric": "retrieval.mrr@10", "vs": "live", "margin": -0.02, "ci": True}]},
                 **backend}
    return load_use_case(use_case_file("rag", {"retrieval": retrieval})), corpus


def _run(cfg, run_id, pinned=None):
    snapshot = steps.corpus(cfg, pinned)
    built = steps.build(cfg, snapshot)
    evaluated = steps.evaluate(cfg, built, run_id=run_id)
    decision = steps.gate(cfg, evaluated)
    return snapshot, built, evaluated, decision


def test_the_index_pipeline_publishes_once_and_a_rerun_writes_nothing(rag_use_case):
    from llmops import tracking

    cfg, corpus = rag_use_case
    snapshot, built, evaluated, decision = _run(cfg, "manual__1")
    assert snapshot.documents == len(TOPICS) and built.written and built.embedded == built.chunks
    assert decision.passed and steps.publish(cfg, decision).moved
    assert live.live_id("rag") == built.index_id
    run = tracking.client().get_run(evaluated.mlflow_run_id)
    assert run.data.tags[steps.INDEX_TAG] == built.index_id
    assert run.data.metrics["retrieval.recall_at_3"] == evaluated.metrics["retrieval.recall@3"] >= 0.8
    assert "retrieval.bm25.mrr_at_10.ci_low" in run.data.metrics
    # the same corpus again: the same snapshot and index ids, nothing built, live unchanged
    again = _run(cfg, "manual__2")
    assert again[0].snapshot_id == snapshot.snapshot_id and again[1].index_id == built.index_id
    assert again[1].written is False and not steps.publish(cfg, again[3]).moved
    assert [m["index_id"] for m in builds.versions("rag")] == [built.index_id]


def test_a_worse_corpus_is_refused_and_live_stays(rag_use_case):
    cfg, corpus = rag_use_case
    *_, first = _run(cfg, "manual__1")
    steps.publish(cfg, first)
    # every document's text filed under its neighbour's key: a new snapshot, a new index, and a far worse one
    keys, texts = list(TOPICS), list(TOPICS.values())
    corpus.write_text("".join(json.dumps({"key": keys[(i + 1) % len(keys)], "text": t}) + "\n"
                              for i, t in enumerate(texts)))
    _, built, _, decision = _run(cfg, "manual__2")
    assert built.index_id != first.index_id and built.reused == built.chunks  # same passages' texts: no re-embedding
    assert not decision.passed and decision.live == first.index_id
    with pytest.raises(NothingToDo, match=f"the retrieval gate refused index {built.index_id}; live stays"):
        steps.publish(cfg, decision)
    assert live.live_id("rag") == first.index_id
    # a pinned snapshot id builds that snapshot's index again (found: nothing written)
    pinned = _run(cfg, "manual__3", pinned=steps.corpus(cfg).snapshot_id)[1]
    assert pinned.index_id == built.index_id and not pinned.written
