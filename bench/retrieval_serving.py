"""What retrieval adds to a request at serving: p50/p95 of the API with and without retrieval, side by side, at
100k passages on the embedded backend.

One index of ``--chunks`` passages (the grounded sample's docstrings recombined, as bench/retrieval_index.py makes
them: 128-token windows; real all-MiniLM-L6-v2 vectors for ``--embed-chunks`` of them, random unit vectors for the
rest, which cost the same to search) is built and published as the live index of the grounded sample
(python_docs_rag: hybrid retrieval, k = 5). Two apps over the same served version (SmolLM2-135M-Instruct's
tokenizer, the sample's prompt template with its ``{context}`` slot) on an engine that answers at once, so what is
measured is the API's own path: one with the retrieval block, one without. Requests alternate between them (one
with, one without, ...), one at a time through the ASGI stack, so both see the same load; the sample's labelled
questions, ``--requests`` of each. Also the retrieval call alone (question embedding, BM25, exact dense search,
fusion). With --write appends the table to docs/benchmarks.md.

    PYTHONPATH=plugins .venv/bin/python bench/retrieval_serving.py [--chunks 100000] [--requests 300]
        [--write docs/benchmarks.md]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "plugins"))
sys.path.insert(0, str(ROOT / "bench"))
USE_CASE = "python_docs_rag"


def build_live_index(cfg, n_chunks: int, embed_chunks: int) -> dict:
    """The live index of ``cfg`` with about ``n_chunks`` passages (reused when this home has it)."""
    import numpy as np
    import pandas as pd
    from retrieval_index import corpus_documents

    from llmops.retrieval import embedding, live
    from llmops.retrieval.backends import backend as make_backend
    from llmops.retrieval.build import CHUNKS, indexes_root, read_manifest
    from llmops.retrieval.chunking import Chunk, chunk_documents

    rcfg = cfg.retrieval
    embedder = embedding.load(rcfg.embedding_model, rcfg.embedding_model_revision)
    iid = f"bench-{n_chunks}"
    folder = indexes_root(cfg.name) / iid
    if (manifest := read_manifest(folder)) is None:
        docs = corpus_documents(n_chunks, embedder.tokenizer, rcfg.chunking)
        chunks = chunk_documents(docs, embedder.tokenizer, rcfg.chunking)
        vectors = np.random.default_rng(0).standard_normal((len(chunks), embedder.identity["dimension"]))
        vectors = vectors.astype(np.float32)
        vectors[:embed_chunks] = embedder.encode([c.text for c in chunks[:embed_chunks]])
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        folder.mkdir(parents=True, exist_ok=True)
        pd.DataFrame([c.to_row() for c in chunks], columns=list(Chunk.__dataclass_fields__)).to_parquet(
            folder / CHUNKS, index=False)
        manifest = {"index_id": iid, "use_case": cfg.name, "corpus_snapshot_id": "bench", "backend": "embedded",
                    "embedding": embedder.identity, "chunks": len(chunks),
                    "chunking": rcfg.chunking.model_dump(mode="json"),
                    "retriever": rcfg.retriever.model_dump(mode="json")}
        make_backend("embedded").write(folder, [c.text for c in chunks], vectors, manifest)
        (folder / "manifest.json").write_text(json.dumps(manifest))
    live.publish(cfg.name, iid)
    return manifest


class InstantEngine:
    def __init__(self, answer: list[int]):
        self.answer = answer

    def submit(self, job):
        job.future.set_result(list(self.answer[:job.max_new_tokens]))
        return job.future

    def close(self) -> None:
        pass


def app_for(cfg, tokenizer, template, answer_ids):
    from llmops.serving.app import Settings, create_app
    from llmops.serving.model_store import FixedStore, ServedVersion

    version = ServedVersion(alias="champion", version="1", model=None, tokenizer=tokenizer, template=template,
                            metadata={}, engine=InstantEngine(answer_ids))
    return create_app(cfg, Settings.for_use_case(cfg, api_keys=("k",), reload_interval_s=3600, prediction_log=False),
                      store=FixedStore(version))


def pct(values: list[float], q: float) -> float:
    return statistics.quantiles(values, n=100)[q - 1] if len(values) > 1 else values[0]


async def side_by_side(apps: dict, questions: list[str], requests: int) -> tuple[dict, dict]:
    """Per app, the latency and the CPU time of this process (ms) of ``requests`` chat completions, the apps
    taking turns request by request (one at a time: a request's CPU time is the process's over it)."""
    import httpx

    times: dict[str, list[float]] = {name: [] for name in apps}
    cpu: dict[str, list[float]] = {name: [] for name in apps}
    clients = {}
    contexts = [app.router.lifespan_context(app) for app in apps.values()]
    for ctx in contexts:
        await ctx.__aenter__()
    try:
        for name, app in apps.items():
            clients[name] = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api",
                                              headers={"Authorization": "Bearer k"}, timeout=60)
        for i in range(requests + 10):
            q = questions[i % len(questions)]
            for name, client in clients.items():
                body = {"model": apps[name].state.service.cfg.model_name, "max_tokens": 8,
                        "messages": [{"role": "user", "content": q}]}
                started, cpu_started = time.perf_counter(), time.process_time()
                r = await client.post("/v1/chat/completions", json=body)
                elapsed = (time.perf_counter() - started) * 1000
                cpu_ms = (time.process_time() - cpu_started) * 1000
                r.raise_for_status()
                if i >= 10:  # the first ten of each: warm-up
                    times[name].append(elapsed)
                    cpu[name].append(cpu_ms)
    finally:
        for client in clients.values():
            await client.aclose()
        for ctx in contexts:
            await ctx.__aexit__(None, None, None)
    return times, cpu


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--chunks", type=int, default=100_000)
    p.add_argument("--embed-chunks", type=int, default=512)
    p.add_argument("--requests", type=int, default=300)
    p.add_argument("--threads", type=int, default=1, help="torch threads (the question's embedding); on a busy "
                   "machine 1 avoids threads spinning against each other")
    p.add_argument("--write", default=None)
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    home = ROOT / ".llmops" / "bench" / "retrieval-serving"
    home.mkdir(parents=True, exist_ok=True)
    os.environ["LLMOPS_HOME"] = str(home)
    load_start = os.getloadavg()[0]

    from llmops.config import load_by_name
    from llmops.model.loading import load_tokenizer
    from llmops.prompts import load_template
    from llmops.retrieval.metrics import load_questions
    from llmops.serving.grounding import Grounding

    cfg = load_by_name(USE_CASE)
    started = time.perf_counter()
    manifest = build_live_index(cfg, args.chunks, args.embed_chunks)
    print(json.dumps({"bench": "retrieval_serving", "index": manifest["index_id"], "chunks": manifest["chunks"],
                      "build_s": round(time.perf_counter() - started, 1)}), flush=True)
    tokenizer, template = load_tokenizer(cfg.base_model), load_template(cfg.prompt_template)
    answer_ids = tokenizer("Use gzip.compress on the bytes.", add_special_tokens=False)["input_ids"]
    questions = [q["question"] for q in load_questions(cfg.retrieval.questions)]
    apps = {"with retrieval": app_for(cfg, tokenizer, template, answer_ids),
            "without retrieval": app_for(cfg.model_copy(update={"retrieval": None}), tokenizer, template, answer_ids)}
    times, cpu = asyncio.run(side_by_side(apps, questions, args.requests))
    grounding = Grounding(cfg)
    grounding.warm_up()
    alone, alone_cpu = [], []
    for q in questions[:min(len(questions), args.requests)]:
        t, c = time.perf_counter(), time.process_time()
        asyncio.run(grounding.retrieve(q))
        alone.append((time.perf_counter() - t) * 1000)
        alone_cpu.append((time.process_time() - c) * 1000)
    rows = {name: {"p50_ms": statistics.median(v), "p95_ms": pct(v, 95), "cpu_p50_ms": statistics.median(cpu[name]),
                   "requests": len(v)} for name, v in times.items()}
    rows["retrieval call alone"] = {"p50_ms": statistics.median(alone), "p95_ms": pct(alone, 95),
                                    "cpu_p50_ms": statistics.median(alone_cpu), "requests": len(alone)}
    added = rows["with retrieval"]["p50_ms"] - rows["without retrieval"]["p50_ms"]
    added_cpu = rows["with retrieval"]["cpu_p50_ms"] - rows["without retrieval"]["cpu_p50_ms"]
    for name, r in rows.items():
        print(json.dumps({"bench": "retrieval_serving", "what": name, **{k: round(v, 2) for k, v in r.items()}}),
              flush=True)
    print(json.dumps({"bench": "retrieval_serving", "added_p50_ms": round(added, 2),
                      "added_cpu_p50_ms": round(added_cpu, 2)}), flush=True)
    if args.write:
        write(args, manifest, rows, (added, added_cpu), load_start)
    return 0


def write(args, manifest: dict, rows: dict, added: tuple[float, float], load_start: float) -> None:
    from retrieval_index import machine

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                            cwd=ROOT).stdout.strip()
    table = "\n".join(f"| {name} | {r['requests']} | {r['p50_ms']:.1f} | {r['p95_ms']:.1f} | {r['cpu_p50_ms']:.1f} |"
                      for name, r in rows.items())
    section = f"""
## Serving with and without retrieval at {manifest['chunks']:,} passages, embedded backend ({datetime.now(UTC):%Y-%m-%d})

Recorded: {datetime.now(UTC):%Y-%m-%d} · commit {commit} · {machine()} · load average {load_start:.1f} at the start,
{os.getloadavg()[0]:.1f} at the end (other work shared the machine)

Reproduce: `PYTHONPATH=plugins .venv/bin/python bench/retrieval_serving.py --chunks {args.chunks} --requests \
{args.requests} --threads {args.threads} --write docs/benchmarks.md`. The grounded sample (python_docs_rag: hybrid, k = 5, all-MiniLM-L6-v2 on
CPU) over an index of {manifest['chunks']:,} passages; the API's own path (routing, validation, retrieval, the prompt
with its passages through SmolLM2's chat template, safety, citations, metrics) on an engine that answers at once;
chat completions one at a time, the two apps taking turns request by request.

| what | requests | p50 ms | p95 ms | CPU p50 ms |
|---|---|---|---|---|
{table}

Retrieval adds {added[0]:.1f} ms to the p50 latency of a request and {added[1]:.1f} ms to its p50 CPU time (the
target: at most 20 ms at 100k passages). CPU time is the process's over each request (one at a time), what the
request costs whatever else runs on the machine; the latency also holds the wait for a core.
"""
    with open(ROOT / args.write, "a", encoding="utf-8") as f:
        f.write(section)


if __name__ == "__main__":
    raise SystemExit(main())
