"""The index id, re-runs that write nothing, incremental embedding, and builds that publish all or nothing."""

from __future__ import annotations

import pytest
from retrieval_cases import index_folders, pg_tables, retrieval_config

from llmops.retrieval import build
from llmops.retrieval.backend import EmbeddedBackend
from llmops.retrieval.embedding import Embedder
from llmops.retrieval.pgvector import PgvectorBackend


def test_index_id_depends_on_every_input_and_nothing_else(embedder):
    rcfg = retrieval_config()
    ident = embedder.identity
    iid = build.index_id("snap1", rcfg, ident)
    assert iid == build.index_id("snap1", retrieval_config(), dict(ident))
    # the same model found by another reference (another folder) is the same model
    assert iid == build.index_id("snap1", rcfg, {**ident, "ref": "./elsewhere", "kind": "local"})
    others = [build.index_id("snap2", rcfg, ident),
              build.index_id("snap1", retrieval_config(**{"chunking.size": 25}), ident),
              build.index_id("snap1", retrieval_config(**{"chunking.overlap": 5}), ident),
              build.index_id("snap1", retrieval_config(**{"retriever.kind": "bm25"}), ident),
              build.index_id("snap1", retrieval_config(**{"retriever.k": 4}), ident),
              build.index_id("snap1", rcfg, {**ident, "digest": "0" * 64}),
              build.index_id("snap1", rcfg, {**ident, "dimension": 128})]
    assert len({iid, *others}) == 8
    # pgvector: the HNSW settings are part of the id (they decide what a query finds); where the table lives is not
    pg = retrieval_config(backend="pgvector")
    pg_id = build.index_id("snap1", pg, ident)
    assert pg_id != iid
    assert pg_id == build.index_id("snap1", retrieval_config(backend="pgvector", pgvector={
        "conn_id": "elsewhere", "schema_name": "other", "ef_search": 400}), ident)
    assert pg_id != build.index_id("snap1", retrieval_config(backend="pgvector", pgvector={"m": 32}), ident)
    assert pg_id != build.index_id("snap1", retrieval_config(backend="pgvector", pgvector={"ef_construction": 128}),
                                   ident)


def _files(folder):
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.stat().st_size)
            for p in folder.rglob("*") if p.is_file()}


def test_a_rerun_writes_nothing(embedder, rcfg, docs):
    first = build.build_index("uc", "snap1", docs, rcfg, embedder)
    assert first["written"] is True and first["counts"] == {"embedded": first["chunks"], "reused": 0}
    root = build.indexes_root("uc")
    before = _files(root)
    again = build.build_index("uc", "snap1", docs, rcfg, embedder)
    assert again["written"] is False and again["index_id"] == first["index_id"]
    assert _files(root) == before  # not one file written, touched or added


def test_unchanged_documents_reuse_every_vector(embedder, rcfg, docs):
    first = build.build_index("uc", "snap1", docs, rcfg, embedder)
    # a new corpus snapshot with the same documents (e.g. re-ingested), or new retriever settings: a new index id,
    # but no passage's text changed, so nothing is embedded again
    second = build.build_index("uc", "snap2", docs, rcfg, embedder)
    assert second["index_id"] != first["index_id"]
    assert second["counts"] == {"embedded": 0, "reused": first["chunks"]}


def test_changing_one_document_re_embeds_about_its_share(embedder, rcfg, docs):
    first = build.build_index("uc", "snap1", docs, rcfg, embedder)
    key, text, source = docs[3]
    changed = [*docs[:3], (key, text.replace("Thread", "worker thread"), source), *docs[4:]]
    second = build.build_index("uc", "snap2", changed, rcfg, embedder)
    per_doc = first["chunks"] / len(docs)
    counts = second["counts"]
    assert counts["embedded"] + counts["reused"] == second["chunks"]
    assert 1 <= counts["embedded"] <= per_doc + 2  # the changed document's passages (+ boundary ones)
    assert counts["reused"] >= second["chunks"] - per_doc - 2
    # reused vectors are the ones the model gives for that text
    from llmops.retrieval.search import open_index

    index = open_index("uc", second["index_id"], embedder)
    row = index.chunks.index[index.chunks.doc_key == "gzip"][0]
    stored = build.backend_of(index.manifest).vectors(index.folder, index.manifest)
    assert stored.shape == (second["chunks"], 384)
    assert abs(float(stored[row] @ embedder.encode([index.chunks.text[row]])[0]) - 1) < 1e-4


def _die_midway(monkeypatch, backend: str):
    """A worker killed after the vectors are written but before the version is published; returns the undo."""
    cls, name = (EmbeddedBackend, "write") if backend == "embedded" else (PgvectorBackend, "publish")
    real = getattr(cls, name)

    def dies_after_the_vectors(self, *args, **kwargs):
        if backend == "embedded":
            real(self, *args, **kwargs)
        raise KeyboardInterrupt("killed")  # as a worker killed mid-write

    monkeypatch.setattr(cls, name, dies_after_the_vectors)
    return lambda: monkeypatch.setattr(cls, name, real)


def test_a_build_killed_midway_publishes_nothing_and_the_retry_publishes_one(embedder, rcfg, docs, monkeypatch):
    restore = _die_midway(monkeypatch, rcfg.backend)
    with pytest.raises(KeyboardInterrupt):
        build.build_index("uc", "snap1", docs, rcfg, embedder)
    assert build.versions("uc") == [] and index_folders("uc") == []
    if rcfg.backend == "pgvector":  # the staging table is there, complete, and not published
        assert pg_tables(rcfg, staging=True) and pg_tables(rcfg) == []
    # a SIGKILL leaves its temporary folder behind (no finally runs): invisible to listings, cleared by the retry
    iid = build.index_id("snap1", rcfg, embedder.identity)
    leftover = build.indexes_root("uc") / f".{iid}.killed.tmp"
    leftover.mkdir()
    (leftover / "vectors.npy").write_bytes(b"half")
    assert build.versions("uc") == []
    restore()
    done = build.build_index("uc", "snap1", docs, rcfg, embedder)
    assert done["written"] and [m["index_id"] for m in build.versions("uc")] == [done["index_id"]]
    assert [p.name for p in build.indexes_root("uc").iterdir()] == [done["index_id"]]  # no leftovers
    if rcfg.backend == "pgvector":  # the killed build's staging table dropped, one table published
        assert pg_tables(rcfg, staging=True) == [] and pg_tables(rcfg) == [f"uc__{done['index_id']}"]


def test_an_index_from_another_embedding_model_is_never_reused(embedder, rcfg, docs):
    build.build_index("uc", "snap1", docs, rcfg, embedder)
    other = Embedder(embedder.source, {**embedder.base_identity, "digest": "f" * 64})
    other.model = embedder.model  # the same weights under another identity: still never mixed
    second = build.build_index("uc", "snap1", docs, rcfg, other)
    assert second["counts"]["reused"] == 0 and second["counts"]["embedded"] == second["chunks"]
