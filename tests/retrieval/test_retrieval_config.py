"""The retrieval block: optional, typed, and its errors name the file and the field."""

from __future__ import annotations

import pytest

from llmops.config import load_use_case
from llmops.errors import ConfigError

RETRIEVAL = {"corpus": {"source": {"path": "docs.jsonl", "prompt_column": "key", "response_column": "text"},
                        "expectation_suite": "include/expectations/corpus_documents.json"},
             "questions": "questions.jsonl"}


def _load(use_case_file, retrieval):
    return load_use_case(use_case_file("uc", {"retrieval": retrieval}))


def test_absent_means_no_grounding_and_defaults_fill_the_rest(use_case_file):
    assert load_use_case(use_case_file("uc", {})).retrieval is None
    cfg = _load(use_case_file, RETRIEVAL).retrieval
    assert (cfg.backend, cfg.retriever.kind, cfg.chunking.by) == ("embedded", "hybrid", "tokens")
    assert cfg.embedding_model == "pkg:all_minilm_l6_v2/model.zip"
    assert cfg.gate.rules[0].metric == "retrieval.mrr@10" and cfg.gate.rules[0].vs == "live"
    pg = _load(use_case_file, {**RETRIEVAL, "backend": "pgvector"}).retrieval
    assert pg.backend == "pgvector" and pg.pgvector.conn_id == "llmops_pgvector"


@pytest.mark.parametrize(("change", "field", "message"), [
    ({"backend": "faiss"}, "retrieval.backend", "Input should be 'embedded' or 'pgvector'"),
    ({"backend": "pgvector", "pgvector": {"m": 1}}, "retrieval.pgvector.m", "greater than or equal to 2"),
    ({"pgvector": {"schema_name": "x; drop table"}}, "retrieval.pgvector.schema_name", "should match pattern"),
    ({"chunking": {"size": 64, "overlap": 64}}, "retrieval.chunking.overlap", "must be smaller than size (64)"),
    ({"retriever": {"kind": "splade"}}, "retrieval.retriever.kind", "Input should be 'bm25', 'dense' or 'hybrid'"),
    ({"questions": None}, "retrieval.questions", "Input should be a valid string"),
    ({"gate": {"rules": [{"metric": "retrieval.recall@5", "vs": "champion"}]}}, "retrieval.gate.rules.0.vs",
     "Input should be 'live'"),
    ({"corpus": {"source": {"kind": "gcs", "path": "docs/*.jsonl"}, "expectation_suite": "s.json"}},
     "retrieval.corpus.source.path", "must start with gs://"),
])
def test_errors_name_the_file_and_the_field(use_case_file, change, field, message):
    path = use_case_file("uc", {"retrieval": {**RETRIEVAL, **change}})
    with pytest.raises(ConfigError) as e:
        load_use_case(path)
    assert f"{path}: {field}: " in str(e.value) and message in str(e.value)


def test_the_sample_loads(tmp_path):
    from llmops import paths

    cfg = load_use_case(paths.PROJECT_ROOT / "include" / "use_cases" / "python_docs_rag.yaml")
    assert cfg.retrieval.retriever.kind == "hybrid" and cfg.retrieval.corpus.source.prompt_column == "key"
