"""The retrieval block: the corpus, chunking, the retriever, the embedding model and the index's gate."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from llmops.config._base import _Strict
from llmops.config.data import SourceConfig
from llmops.config.evaluation import GateRule
from llmops.errors import FieldError


class CorpusConfig(_Strict):
    """The documents grounding reads: any source kind the project reads, one row per document. The source's
    ``prompt_column`` names each document's key (what labelled questions point at) and ``response_column`` its
    text. Validated with its own expectation suite and written as a content-addressed snapshot."""

    source: SourceConfig = Field(description="Where the documents come from (prompt_column: the document key; "
                                 "response_column: the text)")
    expectation_suite: str = Field(description="great-expectations suite JSON for the documents (columns prompt = "
                                   "key, response = text), relative to the project root")


class ChunkingConfig(_Strict):
    """How documents are cut into passages; every setting is part of the index id."""

    by: Literal["tokens", "heading"] = Field("tokens", description="tokens: windows of `size` tokens of the "
                                             "embedding model's tokenizer; heading: one passage per markdown section "
                                             "(a longer section is cut into token windows)")
    size: int = Field(200, gt=8, le=512, description="Tokens per passage (the embedding model's tokenizer)")
    overlap: int = Field(32, ge=0, description="Tokens shared by consecutive passages of a document")

    @model_validator(mode="after")
    def _overlap_below_size(self):
        if self.overlap >= self.size:
            raise FieldError("overlap", f"must be smaller than size ({self.size}), got {self.overlap}")
        return self


class RetrieverConfig(_Strict):
    kind: Literal["bm25", "dense", "hybrid"] = Field("hybrid", description="bm25: lexical; dense: cosine of the "
                                                     "embeddings; hybrid: reciprocal rank fusion of the two")
    k: int = Field(5, gt=0, le=100, description="Passages returned per question (and the k of recall@k)")
    rrf_k: int = Field(60, gt=0, description="hybrid: the constant of reciprocal rank fusion, 1 / (rrf_k + rank)")


class RetrievalGateRule(GateRule):
    """A gate rule on retrieval metrics, in the model gate's language; ``vs: live`` compares with the live index."""

    vs: Literal["live"] | None = Field(None, description="Relative rule: compare with the index that is live "
                                       "(no live index yet: the relative rule is skipped, saying so)")


class RetrievalGateConfig(_Strict):
    rules: list[RetrievalGateRule] = Field(
        default_factory=lambda: [RetrievalGateRule(metric="retrieval.mrr@10", vs="live", margin=-0.02)],
        description="Every rule must pass before `live` moves; metrics: retrieval.recall@k, retrieval.mrr@10, "
                    "retrieval.ndcg@10 (the configured retriever), retrieval.<bm25|dense|hybrid>.<metric>")


class PgvectorConfig(_Strict):
    """Where the pgvector backend keeps its tables, and its HNSW index. ``m`` and ``ef_construction`` are part of
    the index id (they decide what a query finds); the connection and schema are not (where it lives)."""

    conn_id: str = Field("llmops_pgvector", description="Airflow connection to the index database (host, port, "
                         "login, password, schema = database); without it, the URL in LLMOPS_PGVECTOR_URL")
    schema_name: str = Field("llmops_indexes", pattern=r"^[a-z_][a-z0-9_]{0,40}$", description="PostgreSQL schema "
                             "of the published tables (one per index version); builds stage in <schema>_staging")
    m: int = Field(16, ge=2, le=100, description="HNSW: links per node (pgvector's default 16)")
    ef_construction: int = Field(64, ge=4, le=1000, description="HNSW: candidate list size while building "
                                 "(pgvector's default 64)")
    ef_search: int = Field(100, ge=1, le=1000, description="HNSW: candidate list size per query (raised to k when "
                           "k is larger); higher finds more of the exact neighbours, slower")


class RetrievalConfig(_Strict):
    """Grounding (docs/retrieval.md): a versioned passage index built from a corpus, gated on retrieval quality."""

    corpus: CorpusConfig = Field(description="The documents and their expectation suite")
    chunking: ChunkingConfig = Field(ChunkingConfig(), description="How documents become passages")
    retriever: RetrieverConfig = Field(RetrieverConfig(), description="bm25, dense or hybrid, and k")
    embedding_model: str = Field("pkg:all_minilm_l6_v2/model.zip", description="Found by identity like a base "
                                 "model: pkg:<package>/<folder or .zip>, a local folder, or a hub id with "
                                 "embedding_model_revision")
    embedding_model_revision: str | None = Field(None, description="Hub revision of a hub embedding_model")
    backend: Literal["embedded", "pgvector"] = Field("embedded", description="embedded: files under "
                                                     "${LLMOPS_HOME}/indexes (bm25s + exact cosine); pgvector: the "
                                                     "vectors in PostgreSQL with an HNSW index (docs/retrieval.md)")
    pgvector: PgvectorConfig = Field(PgvectorConfig(), description="backend: pgvector: the connection, schema "
                                     "and HNSW settings")
    questions: str = Field(description="Labelled questions (JSONL: question, relevant = list of document keys), "
                           "relative to the project root")
    gate: RetrievalGateConfig = Field(RetrievalGateConfig(), description="What an index must pass to go live")
