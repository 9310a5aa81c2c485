"""An embedding model that does not match the index is refused at load and at query time, naming both."""

from __future__ import annotations

import numpy as np
import pytest

from llmops.retrieval.build import build_index
from llmops.retrieval.embedding import Embedder, EmbeddingMismatch
from llmops.retrieval.search import open_index


def _other_model(embedder, **identity) -> Embedder:
    other = Embedder(embedder.source, {**embedder.base_identity, **identity})
    other.model = embedder.model
    return other


def test_another_model_is_refused_when_the_index_opens(embedder, rcfg, docs):
    built = build_index("uc", "snap1", docs, rcfg, embedder)
    other = _other_model(embedder, digest="ab" * 32, ref="./models/other-minilm")
    with pytest.raises(EmbeddingMismatch) as e:
        open_index("uc", built["index_id"], other)
    text = str(e.value)
    assert f"index {built['index_id']}" in text and "refused" in text
    assert "pkg:all_minilm_l6_v2/model.zip (digest " + embedder.identity["digest"][:16] in text
    assert "./models/other-minilm (digest abababababababab, 384 dimensions)" in text


def test_another_model_or_dimension_is_refused_at_query_time(embedder, rcfg, docs):
    index = open_index("uc", build_index("uc", "snap1", docs, rcfg, embedder)["index_id"], embedder)
    other = _other_model(embedder, digest="cd" * 32)
    with pytest.raises(EmbeddingMismatch, match=f"query on index {index.index_id}: the index was embedded with"):
        index.search("gzip", "dense", embedder=other)
    with pytest.raises(EmbeddingMismatch, match=r"query vectors of shape \(1, 128\) against an index of .* 384 dim"):
        index.rows(["gzip"], "hybrid", 3, vectors=np.ones((1, 128), dtype=np.float32))
    assert index.search("gzip compression", "dense")[0].doc_key == "gzip"  # the right model still answers
