"""Where an index's passages live and how they are searched: the interface every backend implements, and the
embedded one.

The embedded backend is files in the index folder, needing no server: ``bm25s`` for BM25 (a sparse matrix saved as
``.npy`` files, memory-mapped when opened) and an exact cosine search over a float32 ``vectors.npy`` (one matrix
product; exact, so there is no recall to lose and nothing to tune). Why these: both are numpy/scipy only, open in
milliseconds, and the dense search stays exact and fast enough at the sizes this project indexes
(bench/retrieval_index.py measures build chunks/s and query QPS at 10k chunks; see docs/benchmarks.md). An ANN
library (usearch, faiss) or LanceDB pays off past a few hundred thousand passages; at that scale the pgvector
backend (:mod:`llmops.retrieval.pgvector`: the vectors in PostgreSQL with an HNSW index, the same BM25 files) is the
other implementation of :class:`Backend`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

import numpy as np

BM25_DIR = "bm25"
VECTORS = "vectors.npy"


def bm25_tokens(texts: list[str]):
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", show_progress=False, return_ids=False)


class Searcher(Protocol):
    """An opened index version: per query, ranked (row, score) pairs over its passages, rows in ``chunks.parquet``
    order. Queries come in batches (one question is a batch of one)."""

    def lexical(self, questions: list[str], k: int) -> list[list[tuple[int, float]]]: ...

    def dense(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]: ...


class Backend(Protocol):
    name: str

    def write(self, folder: Path, texts: list[str], vectors: np.ndarray, manifest: dict) -> None:
        """Store one index version's lexical and dense parts (``folder``: the temporary folder being built;
        ``manifest``: the version's, which the backend may add its own entry to)."""

    def open(self, folder: Path, manifest: dict) -> Searcher: ...

    def vectors(self, folder: Path, manifest: dict) -> np.ndarray:
        """Every passage's vector, in row order (what an incremental build reuses)."""


class EmbeddedSearcher:
    def __init__(self, folder: Path, manifest: dict | None = None, *, vectors: bool = True):
        import bm25s

        self.vectors = np.load(folder / VECTORS, mmap_mode="r") if vectors else None
        rows = len(self.vectors) if vectors else int((manifest or {}).get("chunks", 0))
        self.bm25 = bm25s.BM25.load(str(folder / BM25_DIR), mmap=True, show_progress=False) if rows else None
        self.size = rows

    def lexical(self, questions: list[str], k: int) -> list[list[tuple[int, float]]]:
        k = min(k, self.size)
        if self.bm25 is None or k == 0:
            return [[] for _ in questions]
        rows, scores = self.bm25.retrieve(bm25_tokens(list(questions)), k=k, show_progress=False, n_threads=1)
        return [[(int(r), float(s)) for r, s in zip(rr, ss, strict=True) if s > 0] for rr, ss in zip(rows, scores,
                                                                                                      strict=True)]

    def dense(self, vectors: np.ndarray, k: int) -> list[list[tuple[int, float]]]:
        all_scores = np.asarray(vectors, dtype=np.float32) @ np.asarray(self.vectors).T  # exact cosine
        k = min(k, all_scores.shape[1])
        out = []
        for scores in all_scores:
            if k == 0:
                out.append([])
                continue
            top = np.argpartition(-scores, k - 1)[:k]
            top = top[np.lexsort((top, -scores[top]))]  # by score, ties by row: deterministic
            out.append([(int(r), float(scores[r])) for r in top])
        return out


class EmbeddedBackend:
    name = "embedded"

    def __init__(self, settings: dict | None = None):
        pass

    def write_bm25(self, folder: Path, texts: list[str]) -> None:
        import bm25s

        if texts:
            bm25 = bm25s.BM25()
            bm25.index(bm25_tokens(texts), show_progress=False)
            bm25.save(str(folder / BM25_DIR), show_progress=False)

    def write(self, folder: Path, texts: list[str], vectors: np.ndarray, manifest: dict) -> None:
        np.save(folder / VECTORS, np.ascontiguousarray(vectors, dtype=np.float32))
        self.write_bm25(folder, texts)

    def open(self, folder: Path, manifest: dict) -> EmbeddedSearcher:
        return EmbeddedSearcher(folder, manifest)

    def vectors(self, folder: Path, manifest: dict) -> np.ndarray:
        return np.load(folder / VECTORS, mmap_mode="r")

