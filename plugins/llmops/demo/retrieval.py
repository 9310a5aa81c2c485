"""``make demo-rag`` (``python -m llmops.cli demo-rag``): the grounded sample's index end to end, and what it
found.

1. ``airflow dags test <use_case>__index`` on the embedded default (the Airflow and MLflow homes of ``make demo``),
   through the demos' shared Airflow runner (:mod:`llmops.demo.pipeline`): corpus snapshot -> build -> evaluate ->
   gate -> publish;
2. prints the index version (passages, embedded and reused), the retrieval metrics of bm25, dense and hybrid side
   by side with their 95% intervals, the gate's decision and where ``live`` points;
3. prints the top passages of the live index for one labelled question, with what a citation names (passage id,
   source file and line, character offsets).

A second run finds the same corpus snapshot and index id and writes nothing (``written: no``).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

from llmops.demo.pipeline import dags_test, migrate

DEFAULT_USE_CASE = "python_docs_rag"
METRICS = ("recall@{k}", "mrr@10", "ndcg@10")


def metrics_table(evaluation: dict) -> list[str]:
    """bm25, dense and hybrid side by side: each metric's mean and its 95% bootstrap interval."""
    k = evaluation["k"]
    names = [m.format(k=k) for m in METRICS]
    lines = [f"{'retriever':10}" + "".join(f"{n:>24}" for n in names)]
    for retriever in ("bm25", "dense", "hybrid"):
        cells = []
        for n in names:
            iv = evaluation["intervals"].get(f"retrieval.{retriever}.{n}")
            cells.append(f"{iv['mean']:.3f} [{iv['low']:.2f}, {iv['high']:.2f}]" if iv else "-")
        lines.append(f"{retriever:10}" + "".join(f"{c:>24}" for c in cells))
    return lines


def passages_text(question: str, passages, width: int = 110) -> list[str]:
    lines = [f"question: {question}"]
    for p in passages:
        text = " ".join(p.text.split())
        lines.append(f"  {p.rank}. {p.doc_key:28} score {p.score:.4f}  {p.source} [{p.start}:{p.end}] "
                     f"passage {p.passage_id[:12]}")
        lines.append(f"     {text[:width]}{'...' if len(text) > width else ''}")
    return lines


def print_summary(use_case: str, question: dict | None = None) -> None:
    from llmops.config import load_by_name
    from llmops.retrieval import build, live, metrics
    from llmops.retrieval.search import retrieve

    cfg = load_by_name(use_case)
    live_id = live.live_id(use_case)
    newest = build.versions(use_case)[-1] if build.versions(use_case) else None
    if newest is None:
        print(f"no index version of {use_case}")
        return
    counts = newest["counts"]
    print(f"\nindex version     {newest['index_id']} ({newest['backend']}): {newest['chunks']} passages of "
          f"{newest['documents']} documents, {counts['embedded']} embedded, {counts['reused']} reused")
    print(f"corpus snapshot   {newest['corpus_snapshot_id']}")
    evaluation = live.load_evaluation(use_case, newest["index_id"])
    if evaluation:
        print(f"\nretrieval on {evaluation['questions']} labelled questions (mean [95% bootstrap interval]):")
        for line in metrics_table(evaluation):
            print("  " + line)
    print(f"\nlive index        {live_id or 'none'}"
          + (" (this version)" if live_id == newest["index_id"] else " (the gate kept the earlier one)"))
    if live_id is None:
        return
    q = question or metrics.load_questions(cfg.retrieval.questions)[0]
    print(f"\ntop passages ({cfg.retrieval.retriever.kind}, k={cfg.retrieval.retriever.k}), relevant: "
          f"{', '.join(q.get('relevant', []))}")
    for line in passages_text(q["question"], retrieve(cfg, q["question"])):
        print(line)


def run(use_case: str = DEFAULT_USE_CASE) -> int:
    from llmops import paths
    from llmops.embedded import embedded_env

    env = embedded_env()
    os.environ.update(env)
    started = time.monotonic()
    Path(env["AIRFLOW_HOME"]).mkdir(parents=True, exist_ok=True)
    logs = paths.llmops_home() / "logs" / "demo-rag"
    if not migrate(env, logs):
        return 1
    dag_id = f"{use_case}__index"
    if not dags_test(dag_id, env=env, log_file=logs / f"{dag_id}.log"):
        return 1
    print_summary(use_case)
    print(f"\nindex pipeline took {time.monotonic() - started:.0f}s")
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    from llmops.errors import LLMOpsError

    parser = argparse.ArgumentParser(prog="python -m llmops.demo.retrieval", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--use-case", default=DEFAULT_USE_CASE)
    args = parser.parse_args(argv)
    try:
        return run(args.use_case)
    except LLMOpsError as e:  # a clear message, not a traceback
        print(f"error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
