"""Index versions: the id, incremental embedding, and an atomic build.

The **index id** is a hash of the corpus snapshot id, the chunking settings, the retriever settings, the embedding
model's identity (digest and dimension, not where it was found) and the backend: the same inputs give the same id,
and a build whose id is already published writes nothing. An index version is a folder
``${LLMOPS_HOME}/indexes/<use_case>/<index_id>/`` holding ``chunks.parquet`` (id, document key, source, offsets,
text, text hash), the backend's files and ``manifest.json`` (written last).

**Incremental**: a passage whose text hash is found in an earlier version built with the same embedding model
takes that version's vector; only the others are embedded. The counts (embedded, reused) are in the manifest.

**Atomic**: the folder is built under a temporary name and renamed into place; a build that fails or is killed
midway leaves no version behind (its temporary folder is skipped by every listing and removed by the next build).
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from llmops import paths
from llmops.config import RetrievalConfig
from llmops.retrieval.backends import backend as make_backend
from llmops.retrieval.chunking import Chunk, chunk_documents
from llmops.retrieval.embedding import Embedder, same_model

log = logging.getLogger(__name__)
FORMAT = 1
MANIFEST = "manifest.json"
CHUNKS = "chunks.parquet"


def indexes_root(use_case: str) -> Path:
    return paths.llmops_home() / "indexes" / use_case


def index_id(snapshot_id: str, cfg: RetrievalConfig, embedding_identity: dict) -> str:
    """A hash of everything that decides the index's content; nothing else (no time, no path) enters it."""
    parts = {
        "format": FORMAT,
        "corpus_snapshot_id": snapshot_id,
        "chunking": cfg.chunking.model_dump(mode="json"),
        "retriever": cfg.retriever.model_dump(mode="json"),
        "embedding": {"digest": embedding_identity["digest"], "dimension": embedding_identity["dimension"]},
        "backend": cfg.backend,
    }
    if cfg.backend == "pgvector":  # the HNSW graph's settings decide what a query finds; where it lives does not
        parts["hnsw"] = {"m": cfg.pgvector.m, "ef_construction": cfg.pgvector.ef_construction}
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]


def read_manifest(folder: Path) -> dict | None:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def versions(use_case: str) -> list[dict]:
    """Manifests of every complete index version of the use case, oldest first."""
    root = indexes_root(use_case)
    found = [m for d in (root.iterdir() if root.is_dir() else []) if d.is_dir() and not d.name.startswith(".")
             if (m := read_manifest(d))]
    return sorted(found, key=lambda m: (m["created_at"], m["index_id"]))


def _reusable_vectors(use_case: str, identity: dict) -> dict[str, np.ndarray]:
    """text hash -> vector from the newest version embedded with the same model (empty when there is none)."""
    from llmops.errors import IndexNotFound, IndexUnavailable

    for manifest in reversed(versions(use_case)):
        if same_model(manifest["embedding"], identity):
            folder = indexes_root(use_case) / manifest["index_id"]
            shas = pd.read_parquet(folder / CHUNKS, columns=["text_sha"])["text_sha"].tolist()
            try:
                vectors = backend_of(manifest).vectors(folder, manifest)
            except (IndexNotFound, IndexUnavailable) as e:  # e.g. a pgvector version whose database is gone
                log.warning("index %s: its vectors cannot be read for reuse (%s); trying an older version",
                            manifest["index_id"], e)
                continue
            return {sha: vectors[i] for i, sha in enumerate(shas)}
    return {}


def backend_of(manifest: dict):
    """The backend an index version was written with (its settings from the manifest)."""
    return make_backend(manifest["backend"], manifest.get("pgvector"))


def embed_incrementally(chunks: list[Chunk], embedder: Embedder, previous: dict[str, np.ndarray]
                        ) -> tuple[np.ndarray, dict]:
    """Vectors for ``chunks`` in order, reusing ``previous`` (text hash -> vector); and the counts."""
    dim = embedder.identity["dimension"]
    vectors = np.zeros((len(chunks), dim), dtype=np.float32)
    todo = [i for i, c in enumerate(chunks) if c.text_sha not in previous]
    for i, c in enumerate(chunks):
        if c.text_sha in previous:
            vectors[i] = previous[c.text_sha]
    if todo:
        vectors[todo] = embedder.encode([chunks[i].text for i in todo])
    return vectors, {"embedded": len(todo), "reused": len(chunks) - len(todo)}


def _clean_partial(root: Path, iid: str) -> None:
    """A killed build of this same id leaves ``.<id>.<random>.tmp`` (atomic_dir's name): remove it. Other ids'
    temporary folders may be builds in progress and are left alone."""
    for d in root.glob(f".{iid}.*.tmp"):
        shutil.rmtree(d, ignore_errors=True)


def build_index(use_case: str, snapshot_id: str, docs, cfg: RetrievalConfig, embedder: Embedder) -> dict:
    """Build (or find) the index version of ``docs`` (``(key, text, source)`` triples of corpus snapshot
    ``snapshot_id``). Returns its manifest, with ``written``: False when the version existed (nothing written)."""
    from llmops.atomic import atomic_dir
    from llmops.version import code_version

    identity = embedder.identity
    iid = index_id(snapshot_id, cfg, identity)
    root = indexes_root(use_case)
    target = root / iid
    if existing := read_manifest(target):
        log.info("index %s exists: nothing to write", iid)
        return {**existing, "written": False}
    root.mkdir(parents=True, exist_ok=True)
    _clean_partial(root, iid)
    t0 = time.perf_counter()
    chunks = list({c.chunk_id: c for c in chunk_documents(docs, embedder.tokenizer, cfg.chunking)}.values())
    t1 = time.perf_counter()
    vectors, counts = embed_incrementally(chunks, embedder, _reusable_vectors(use_case, identity))
    t2 = time.perf_counter()
    manifest = {
        "index_id": iid, "use_case": use_case, "format": FORMAT, "corpus_snapshot_id": snapshot_id,
        "chunking": cfg.chunking.model_dump(mode="json"), "retriever": cfg.retriever.model_dump(mode="json"),
        "embedding": identity, "backend": cfg.backend, "chunks": len(chunks),
        "documents": len({c.doc_key for c in chunks}), "counts": counts,
        "created_at": datetime.now(UTC).isoformat(), "code_version": code_version(),
    }
    with atomic_dir(target, exists="keep", complete=lambda p: (p / MANIFEST).exists()) as built:
        pd.DataFrame([c.to_row() for c in chunks], columns=list(Chunk.__dataclass_fields__)).to_parquet(
            built.path / CHUNKS, index=False)
        settings = cfg.pgvector.model_dump() if cfg.backend == "pgvector" else None
        make_backend(cfg.backend, settings).write(built.path, [c.text for c in chunks], vectors, manifest)
        manifest["seconds"] = {"chunk": round(t1 - t0, 3), "embed": round(t2 - t1, 3),
                               "write": round(time.perf_counter() - t2, 3)}
        (built.path / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    log.info("index %s: %d passages of %d documents, %d embedded, %d reused", iid, manifest["chunks"],
             manifest["documents"], counts["embedded"], counts["reused"])
    return {**(read_manifest(target) or manifest), "written": built.published}
