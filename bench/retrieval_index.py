"""Index build and query speed of the retrieval backends at 10k (or 100k) passages: embedded (bm25s + exact cosine
over numpy) and pgvector (the same BM25 files + an HNSW index in PostgreSQL, with ``--pgvector-url``).

The corpus is the grounded sample's docstrings (include/data/python_docs_rag/corpus.jsonl), recombined with a fixed
seed into documents until they give ``--chunks`` passages (128-token windows, 16 overlap, the sample's settings).
Measured, each the median of ``--repeats`` runs after a warm-up, in one process:

- chunking (documents -> passages, the embedding model's tokenizer), chunks/s;
- embedding (all-MiniLM-L6-v2 on CPU) on ``--embed-chunks`` of them, chunks/s: the cost a full build pays per new
  passage, and the one an incremental build skips for unchanged ones;
- writing the index (chunks.parquet, the bm25s index, vectors.npy), chunks/s;
- a full build's chunks/s, from the three: 1 / (1/chunk + 1/embed + 1/write);
- queries one at a time (as the API asks them): bm25, dense and hybrid, question embedding included, and the dense
  search alone on a precomputed vector, queries/s;
- pgvector only: HNSW recall@10 against exact search (numpy over the same vectors) for the questions.

Only ``--embed-chunks`` passages get real embeddings; the others get random unit vectors (the write and search cost
is the same). The questions' true neighbours are then among the real embeddings, which makes HNSW recall easy: the
figure checks the wiring, not recall over a fully embedded corpus.

Prints one JSON line per measurement; with --write appends a section to docs/benchmarks.md.

    PYTHONPATH=plugins .venv/bin/python bench/retrieval_index.py [--chunks 10000] [--write docs/benchmarks.md]
        [--backend embedded|pgvector] [--pgvector-url postgresql://user:pw@127.0.0.1:5432/db]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))


def machine() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), "unknown CPU") if Path("/proc/cpuinfo").exists() else "unknown CPU"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cpu}, {cores} cores, CPU only (no GPU)"


def corpus_documents(target_chunks: int, tokenizer, chunking, seed: int = 0):
    from llmops.retrieval.chunking import chunk_documents

    base = [json.loads(line)["text"] for line in (ROOT / "include/data/python_docs_rag/corpus.jsonl").open()]
    rnd, docs, chunks = random.Random(seed), [], 0
    while chunks < target_chunks:
        batch = [(f"doc{len(docs) + i:06d}", "\n\n".join(rnd.sample(base, 3)), "bench") for i in range(200)]
        chunks += len(chunk_documents(batch, tokenizer, chunking))
        docs += batch
    return docs


def median_time(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks", type=int, default=10_000)
    p.add_argument("--embed-chunks", type=int, default=512)
    p.add_argument("--queries", type=int, default=100)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own); on a busy "
                   "machine 1 avoids threads spinning against each other")
    p.add_argument("--write", default=None)
    p.add_argument("--backend", choices=("embedded", "pgvector"), default="embedded")
    p.add_argument("--pgvector-url", default=os.environ.get("LLMOPS_PGVECTOR_URL"),
                   help="pgvector server (default: LLMOPS_PGVECTOR_URL)")
    args = p.parse_args(argv)
    if args.backend == "pgvector":
        if not args.pgvector_url:
            p.error("--backend pgvector needs --pgvector-url or LLMOPS_PGVECTOR_URL")
        os.environ["LLMOPS_PGVECTOR_URL"] = args.pgvector_url
    started_load = os.getloadavg()[0]
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    os.environ.setdefault("LLMOPS_HOME", tempfile.mkdtemp(prefix="retrieval-bench-"))

    import numpy as np
    import pandas as pd

    from llmops.config import ChunkingConfig, RetrieverConfig
    from llmops.retrieval import embedding
    from llmops.retrieval.backends import backend as make_backend
    from llmops.retrieval.chunking import Chunk, chunk_documents
    from llmops.retrieval.metrics import load_questions
    from llmops.retrieval.search import Index

    chunking = ChunkingConfig(by="tokens", size=128, overlap=16)
    embedder = embedding.load("pkg:all_minilm_l6_v2/model.zip")
    tok = embedder.tokenizer
    docs = corpus_documents(args.chunks, tok, chunking)
    chunks = chunk_documents(docs, tok, chunking)
    n = len(chunks)
    rows, results = [], {}

    def emit(name, value, unit, **extra):
        row = {"measurement": name, "value": round(value, 3 if value < 10 else 1), "unit": unit, "chunks": n,
               "backend": args.backend, **extra}
        rows.append(row)
        results[name] = value
        print(json.dumps(row), flush=True)

    emit("chunk", n / median_time(lambda: chunk_documents(docs, tok, chunking), args.repeats), "chunks/s")
    sample = [c.text for c in chunks[:args.embed_chunks]]
    emit("embed", len(sample) / median_time(lambda: embedder.encode(sample), args.repeats), "chunks/s",
         embedded=len(sample))
    rnd = np.random.default_rng(0)
    vectors = rnd.standard_normal((n, embedder.identity["dimension"])).astype(np.float32)
    vectors[:len(sample)] = embedder.encode(sample)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    work = Path(os.environ["LLMOPS_HOME"]) / "bench-index"

    settings = {"conn_id": "llmops_pgvector_bench", "schema_name": "llmops_bench"}
    manifest = {"index_id": "bench", "use_case": "bench", "corpus_snapshot_id": "bench", "backend": args.backend,
                "embedding": embedder.identity, "chunks": n,
                "retriever": RetrieverConfig(kind="hybrid", k=5).model_dump()}

    def write():
        import shutil

        shutil.rmtree(work, ignore_errors=True)
        work.mkdir(parents=True)
        pd.DataFrame([c.to_row() for c in chunks], columns=list(Chunk.__dataclass_fields__)).to_parquet(
            work / "chunks.parquet", index=False)
        backend = make_backend(args.backend, settings)
        if args.backend == "pgvector":  # each run publishes anew: drop the previous run's table first
            with backend.db.cursor() as cur:
                cur.execute("DROP SCHEMA IF EXISTS llmops_bench CASCADE")
        backend.write(work, [c.text for c in chunks], vectors, manifest)
        if args.backend == "pgvector":
            backend.db.close()

    emit("write", n / median_time(write, args.repeats), "chunks/s")
    emit("build (full, from the three)", 1 / sum(1 / results[k] for k in ("chunk", "embed", "write")), "chunks/s")
    write()
    (work / "manifest.json").write_text(json.dumps(manifest))
    index = Index(work, embedder)
    questions = [q["question"] for q in load_questions("include/data/python_docs_rag/questions.jsonl")]
    questions = (questions * (args.queries // len(questions) + 1))[:args.queries]
    for retriever in ("bm25", "dense", "hybrid"):
        seconds = median_time(lambda r=retriever: [index.search(q, r, 5) for q in questions], args.repeats)
        label = f"query {retriever}" + (" (question embedded)" if retriever != "bm25" else "")
        emit(label, len(questions) / seconds, "queries/s")
    qvec = embedder.encode(questions)
    seconds = median_time(lambda: [index.dense_rows(qvec[i:i + 1], 5) for i in range(len(questions))], args.repeats)
    emit("query dense (search only, vector given)", len(questions) / seconds, "queries/s")
    if args.backend == "pgvector":
        unique = list(dict.fromkeys(questions))
        uvec = embedder.encode(unique)
        exact = np.argsort(-(uvec @ vectors.T), axis=1)[:, :10]
        found = [[r for r, _ in index.dense_rows(uvec[i:i + 1], 10)[0]] for i in range(len(unique))]
        recall = float(np.mean([len(set(f) & set(e.tolist())) / 10 for f, e in zip(found, exact, strict=True)]))
        emit("HNSW recall@10 vs exact", recall, "", questions=len(unique),
             ef_search=100, m=16, ef_construction=64)

    if args.write:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                                cwd=ROOT).stdout.strip()
        table = "\n".join(f"| {r['measurement']} | {r['value']:,} {r['unit']} |" for r in rows)
        section = f"""
## Retrieval index, {args.backend} backend: build and query at {n:,} passages ({datetime.now(UTC):%Y-%m-%d})

Recorded: {datetime.now(UTC):%Y-%m-%d} · commit {commit} · {machine()} · command below

Reproduce: `PYTHONPATH=plugins .venv/bin/python bench/retrieval_index.py --chunks {args.chunks} --embed-chunks \
{args.embed_chunks} --queries {args.queries} --repeats {args.repeats}{f' --threads {args.threads}' if args.threads else ''} --backend {args.backend} --write docs/benchmarks.md`. bm25s {_version("bm25s")},
sentence-transformers {_version("sentence-transformers")}, all-MiniLM-L6-v2 (384 dimensions) on CPU; passages of 128
tokens (16 overlap) from the sample's docstrings recombined; medians of {args.repeats} runs after a warm-up; queries
one at a time, k = 5.

| measurement | value |
|---|---|
{table}

{_server(args) if args.backend == "pgvector" else ""}torch threads: {_threads()}; load average {started_load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end (other
work shared the machine).
"""
        with open(ROOT / args.write, "a", encoding="utf-8") as f:
            f.write(section)
    return 0


def _server(args) -> str:
    import psycopg2

    with psycopg2.connect(args.pgvector_url) as conn, conn.cursor() as cur:
        cur.execute("SELECT current_setting('server_version'), extversion FROM pg_extension WHERE extname = 'vector'")
        pg, vec = cur.fetchone()
    conn.close()
    return (f"pgvector {vec} on PostgreSQL {pg}, on the same machine (a container, over loopback TCP): HNSW m=16, "
            "ef_construction=64, ef_search=100; the vectors sent by binary COPY, queries one statement each.\n")


def _threads() -> int:
    import torch

    return torch.get_num_threads()


def _version(dist: str) -> str:
    from importlib.metadata import version

    return version(dist)


if __name__ == "__main__":
    raise SystemExit(main())
