"""An opened index version, and ``retrieve(question)`` on a use case's live index (what the API will call).

Opening an index with an embedding model checks that it is the model the index was embedded with (digest and
dimension) and refuses another, naming both; every query checks again (the model passed in, or the query vector's
dimension), so vectors of two models can never be compared.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from llmops.errors import DataError, IndexNotFound
from llmops.retrieval.build import CHUNKS, backend_of, indexes_root, read_manifest
from llmops.retrieval.embedding import Embedder, EmbeddingMismatch, check_same, describe
from llmops.retrieval.fusion import rrf

RETRIEVERS = ("bm25", "dense", "hybrid")


@dataclass(frozen=True)
class Passage:
    """One retrieved passage: what a citation names."""

    passage_id: str
    doc_key: str
    source: str
    start: int
    end: int
    text: str
    score: float
    rank: int
    index_id: str

    def to_dict(self) -> dict:
        return asdict(self)


class Index:
    def __init__(self, folder: Path, embedder: Embedder):
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        if self.manifest is None:
            raise IndexNotFound(f"no index version at {self.folder} (missing or incomplete: no manifest.json)")
        check_same(self.manifest["embedding"], embedder.identity, f"index {self.manifest['index_id']}")
        self.embedder = embedder
        self.chunks = pd.read_parquet(self.folder / CHUNKS)
        self.searcher = backend_of(self.manifest).open(self.folder, self.manifest)

    @property
    def index_id(self) -> str:
        return self.manifest["index_id"]

    @property
    def dimension(self) -> int:
        return int(self.manifest["embedding"]["dimension"])

    def encode(self, questions: list[str], embedder: Embedder | None = None) -> np.ndarray:
        """Query vectors, refused unless ``embedder`` (default: the one the index was opened with) is the index's."""
        embedder = embedder or self.embedder
        check_same(self.manifest["embedding"], embedder.identity, f"query on index {self.index_id}")
        return embedder.encode(list(questions))

    def dense_rows(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self.dimension:
            raise EmbeddingMismatch(f"query on index {self.index_id}: query vectors of shape {vectors.shape} against "
                                    f"an index of {describe(self.manifest['embedding'])}: refused")
        return self.searcher.dense(vectors, k)

    def rows(self, questions: list[str], retriever: str, k: int, *, rrf_k: int = 60, embedder: Embedder | None = None,
             vectors: np.ndarray | None = None) -> list[list[tuple[int, float]]]:
        """Per question, ranked (row, score) pairs of ``retriever`` (bm25, dense, hybrid). ``vectors``: the
        questions' embeddings when the caller has them (checked against the index's dimension)."""
        if retriever not in RETRIEVERS:
            raise ValueError(f"retriever must be one of {', '.join(RETRIEVERS)}, not {retriever!r}")
        if retriever == "bm25":
            return self.searcher.lexical(questions, k)
        if vectors is None:
            vectors = self.encode(questions, embedder)
        if retriever == "dense":
            return self.dense_rows(vectors, k)
        depth = max(k, 50)  # fuse deeper lists than we return, as RRF is meant to be used
        lexical, dense = self.searcher.lexical(questions, depth), self.dense_rows(vectors, depth)
        return [rrf([[r for r, _ in lex], [r for r, _ in den]], k, rrf_k)
                for lex, den in zip(lexical, dense, strict=True)]

    def search(self, question: str, retriever: str | None = None, k: int | None = None, *,
               embedder: Embedder | None = None) -> list[Passage]:
        cfg = self.manifest["retriever"]
        retriever, k = retriever or cfg["kind"], k or cfg["k"]
        ranked = self.rows([question], retriever, k, rrf_k=cfg.get("rrf_k", 60), embedder=embedder)[0]
        out = []
        for rank, (row, score) in enumerate(ranked, start=1):
            c = self.chunks.iloc[row]
            out.append(Passage(str(c.chunk_id), str(c.doc_key), str(c.source), int(c.start), int(c.end),
                               str(c.text), float(score), rank, self.index_id))
        return out


def open_index(use_case: str, index_id: str, embedder: Embedder) -> Index:
    return Index(indexes_root(use_case) / index_id, embedder)


_OPENED: dict[tuple, Index] = {}


def _opened(use_case: str, index_id: str, embedder: Embedder) -> Index:
    """The live index opened once per process (versions never change once published; a new live id opens anew)."""
    key = (str(indexes_root(use_case)), index_id, embedder.identity["digest"])
    if key not in _OPENED:
        for old in [k for k in _OPENED if k[0] == key[0]]:
            del _OPENED[old]  # the version live before: no longer asked
        _OPENED[key] = open_index(use_case, index_id, embedder)
    return _OPENED[key]


def retrieve(cfg, question: str, *, k: int | None = None, retriever: str | None = None) -> list[Passage]:
    """The top passages for ``question`` from the use case's live index (``cfg``: its UseCaseConfig), each with
    its id, document key, source, character offsets, score and the index id."""
    from llmops.retrieval import embedding, live

    if cfg.retrieval is None:
        raise DataError(f"use case '{cfg.name}' has no retrieval block: nothing to retrieve from")
    live_id = live.live_id(cfg.name)
    if live_id is None:
        raise IndexNotFound(f"use case '{cfg.name}' has no live index: run its '{cfg.name}__index' DAG")
    embedder = embedding.load(cfg.retrieval.embedding_model, cfg.retrieval.embedding_model_revision)
    return _opened(cfg.name, live_id, embedder).search(question, retriever, k)
