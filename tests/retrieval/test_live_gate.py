"""The retrieval gate in the model gate's language, publish and rollback of `live`, and retrieve() on it."""

from __future__ import annotations

import pytest

from llmops.config import UseCaseConfig
from llmops.errors import DataError
from llmops.retrieval import live, metrics
from llmops.retrieval.build import build_index
from llmops.retrieval.search import IndexNotFound, open_index, retrieve


def _evaluate(embedder, rcfg, docs, questions, snapshot):
    built = build_index("uc", snapshot, docs, rcfg, embedder)
    evaluation = metrics.evaluate_index(open_index("uc", built["index_id"], embedder), questions,
                                        rcfg.retriever.k, samples=300)
    live.save_evaluation("uc", evaluation)
    return built["index_id"], evaluation


def test_a_worse_index_is_refused_with_the_numbers_and_live_stays(embedder, docs, questions, make_rcfg):
    rules = {"rules": [{"metric": "retrieval.mrr@10", "vs": "live", "margin": -0.02, "ci": True},
                       {"metric": "retrieval.recall@3", "min": 0.5}]}
    rcfg = make_rcfg(gate=rules)
    good_id, good = _evaluate(embedder, rcfg, docs, questions, "snap-good")
    first = live.gate(rcfg.gate, good, None)
    assert first["passed"] and "no live index yet" in first["reasons"][-1]
    live.publish("uc", good_id)
    # a broken chunker: every passage is filed under the wrong document (texts shifted by one key)
    keys = [d[0] for d in docs]
    broken = [(keys[(i + 1) % len(keys)], text, source) for i, (_, text, source) in enumerate(docs)]
    bad_id, bad = _evaluate(embedder, rcfg, broken, questions, "snap-broken")
    decision = live.gate(rcfg.gate, bad, live.load_evaluation("uc", live.live_id("uc")))
    assert not decision["passed"] and decision["live"] == good_id and decision["candidate"] == bad_id
    mrr_rule = decision["rules"][0]
    assert not mrr_rule["passed"] and mrr_rule["reference"] == "live"
    assert mrr_rule["value"] < mrr_rule["reference_value"] - 0.5 and mrr_rule["ci_high"] < -0.02
    assert "retrieval.mrr@10 vs live" in decision["reasons"][0] and "fails" in decision["reasons"][0]
    assert live.live_id("uc") == good_id  # nothing moved
    # the same index again is not worse than itself
    assert live.gate(rcfg.gate, good, live.load_evaluation("uc", good_id))["passed"]


def test_publish_and_rollback_move_the_live_pointer(embedder, rcfg, make_rcfg, docs, questions):
    a, _ = _evaluate(embedder, rcfg, docs, questions, "snap-a")
    b, _ = _evaluate(embedder, make_rcfg(**{"retriever.kind": "dense"}), docs, questions, "snap-a")
    assert live.live_id("uc") is None
    assert live.publish("uc", a)["moved"] and live.publish("uc", b)["moved"]
    assert live.publish("uc", b)["moved"] is False  # already live: nothing written
    assert live.live_id("uc") == b
    assert live.rollback("uc")["index_id"] == a and live.live_id("uc") == a
    with pytest.raises(DataError, match="no earlier live index to roll back to"):
        live.rollback("uc")
    with pytest.raises(DataError, match="no complete index version nope"):
        live.publish("uc", "nope")


def test_retrieve_returns_cited_passages_from_the_live_index(embedder, docs, questions, monkeypatch, rcfg):
    import llmops.retrieval.embedding as embedding

    monkeypatch.setattr(embedding, "load", lambda ref, revision=None: embedder)  # the session's loaded model
    cfg = UseCaseConfig.model_validate({"name": "uc", "source": {"path": "x.jsonl"}, "expectation_suite": "s.json",
                                        "prompt_template": "p.txt", "base_model": "m",
                                        "retrieval": rcfg.model_dump(mode="json")})
    with pytest.raises(IndexNotFound, match="no live index: run its 'uc__index' DAG"):
        retrieve(cfg, "gzip")
    index_id, _ = _evaluate(embedder, rcfg, docs, questions, "snap1")
    live.publish("uc", index_id)
    passages = retrieve(cfg, "How do I accept TCP connections on a port?")
    assert len(passages) == 3 and passages[0].doc_key == "socket" and passages[0].index_id == index_id
    text = dict((k, t) for k, t, _ in docs)["socket"]
    top = passages[0]
    assert text[top.start:top.end] == top.text and top.source.startswith("corpus.jsonl:") and top.rank == 1
    assert [p.rank for p in passages] == [1, 2, 3] and len({p.passage_id for p in passages}) == 3
