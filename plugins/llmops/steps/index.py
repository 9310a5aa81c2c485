"""The index pipeline's steps (the ``<use_case>__index`` DAG): corpus snapshot -> build (chunk, embed, write) ->
evaluate retrieval -> gate -> publish. Plain functions: config in, typed payload out; ids travel, never vectors.

- ``corpus``: the pinned corpus snapshot, or a new one read, validated and written now (the same documents give the
  same id, so a scheduled run over an unchanged corpus leads to the same index id and writes nothing);
- ``build``: the index version of that snapshot (found, or built incrementally and atomically);
- ``evaluate``: bm25, dense and hybrid side by side on the labelled questions, kept beside the versions and logged
  as the DAG run's MLflow run (the index id and corpus snapshot as tags, the metrics and their intervals);
- ``gate``: the retrieval gate against the live index's evaluation;
- ``publish``: ``live`` moves to the version when the gate passed; a refused gate raises :class:`NothingToDo` with
  the reasons (the task is skipped, ``live`` stays).
"""

from __future__ import annotations

import logging

from llmops.config import UseCaseConfig
from llmops.errors import ConfigError, NothingToDo
from llmops.payloads import CorpusSnapshot, IndexBuilt, IndexDecision, IndexPublished, RetrievalEvaluated

log = logging.getLogger(__name__)
INDEX_TAG = "llmops.index_id"


def _retrieval(cfg: UseCaseConfig):
    if cfg.retrieval is None:
        raise ConfigError(f"use case '{cfg.name}': retrieval: the index pipeline needs a retrieval block")
    return cfg.retrieval


def _embedder(cfg: UseCaseConfig):
    from llmops.retrieval import embedding

    return embedding.load(cfg.retrieval.embedding_model, cfg.retrieval.embedding_model_revision)


def corpus(cfg: UseCaseConfig, pinned: str | None = None) -> CorpusSnapshot:
    from llmops import names
    from llmops.retrieval import corpus as corpora

    _retrieval(cfg)
    if pinned:
        sid = names.snapshot_id(pinned, "snapshot_id")
        manifest = corpora.store(cfg).manifest(sid)  # SnapshotNotFound names where it looked
    else:
        manifest = corpora.snapshot_corpus(cfg)
    rows = manifest["rows"]
    return CorpusSnapshot(snapshot_id=manifest["snapshot_id"], documents=int(rows["train"] + rows["eval"]))


def build(cfg: UseCaseConfig, snapshot: CorpusSnapshot) -> IndexBuilt:
    from llmops.retrieval import corpus as corpora
    from llmops.retrieval.build import build_index

    rcfg = _retrieval(cfg)
    manifest = build_index(cfg.name, snapshot.snapshot_id, corpora.documents(cfg, snapshot.snapshot_id), rcfg,
                           _embedder(cfg))
    return IndexBuilt(index_id=manifest["index_id"], snapshot_id=snapshot.snapshot_id, chunks=manifest["chunks"],
                      embedded=manifest["counts"]["embedded"], reused=manifest["counts"]["reused"],
                      written=manifest["written"])


def evaluate(cfg: UseCaseConfig, built: IndexBuilt, *, run_id: str | None = None) -> RetrievalEvaluated:
    """Evaluate (or find the evaluation of) the version; with ``run_id``, log it as that DAG run's MLflow run."""
    from llmops.retrieval import live, metrics
    from llmops.retrieval.search import open_index

    rcfg = _retrieval(cfg)
    evaluation = live.load_evaluation(cfg.name, built.index_id)
    if evaluation is None:
        index = open_index(cfg.name, built.index_id, _embedder(cfg))
        evaluation = metrics.evaluate_index(index, metrics.load_questions(rcfg.questions), rcfg.retriever.k)
        live.save_evaluation(cfg.name, evaluation)
    mlflow_run = _track(cfg, built, evaluation, run_id) if run_id else None
    return RetrievalEvaluated(index_id=built.index_id, metrics=evaluation["metrics"], mlflow_run_id=mlflow_run)


def _track(cfg: UseCaseConfig, built: IndexBuilt, evaluation: dict, run_id: str) -> str:
    from llmops import tracking

    run = tracking.run_for_dag_run(cfg.name, run_id, tags={INDEX_TAG: built.index_id,
                                                           "llmops.corpus_snapshot_id": built.snapshot_id,
                                                           "llmops.kind": "index"})
    rcfg = cfg.retrieval
    tracking.log_params(run, {"index_id": built.index_id, "corpus_snapshot_id": built.snapshot_id,
                              "chunking": rcfg.chunking.model_dump_json(),
                              "retriever": rcfg.retriever.model_dump_json(),
                              "embedding_model": rcfg.embedding_model, "backend": rcfg.backend})
    flat = {}
    for name, interval in evaluation["intervals"].items():
        flat[name] = interval["mean"]
        flat[f"{name}.ci_low"], flat[f"{name}.ci_high"] = interval["low"], interval["high"]
    flat.update({"index.chunks": built.chunks, "index.embedded": built.embedded, "index.reused": built.reused})
    tracking.log_metrics(run, {k.replace("@", "_at_"): v for k, v in flat.items()})  # MLflow refuses "@" in names
    return run


def gate(cfg: UseCaseConfig, evaluated: RetrievalEvaluated) -> IndexDecision:
    from llmops.evaluate.gate import decision_text
    from llmops.retrieval import live

    rcfg = _retrieval(cfg)
    current = live.live_id(cfg.name)
    candidate = live.load_evaluation(cfg.name, evaluated.index_id)
    reference = live.load_evaluation(cfg.name, current) if current and current != evaluated.index_id else None
    if current == evaluated.index_id:
        reference = candidate  # already live: compared with itself, it passes a non-inferiority rule
    decision = live.gate(rcfg.gate, candidate, reference)
    text = decision_text(decision, title=f"for index {evaluated.index_id} of {cfg.name}")
    log.info("%s", text)
    return IndexDecision(index_id=evaluated.index_id, passed=decision["passed"], reasons=decision["reasons"],
                         live=current, details={"text": text, "rules": decision["rules"]})


def publish(cfg: UseCaseConfig, decision: IndexDecision) -> IndexPublished:
    from llmops.retrieval import live

    if not decision.passed:
        raise NothingToDo(f"the retrieval gate refused index {decision.index_id}; live stays "
                          f"{decision.live}: {'; '.join(decision.reasons)}")
    pointer = live.publish(cfg.name, decision.index_id)
    previous = pointer["history"][-1] if pointer["history"] else None
    log.info("live index of %s: %s (%s)", cfg.name, decision.index_id, "moved" if pointer["moved"] else "unchanged")
    return IndexPublished(index_id=decision.index_id, moved=pointer["moved"], previous=previous)


def rollback(cfg: UseCaseConfig) -> IndexPublished:
    from llmops.retrieval import live

    pointer = live.rollback(cfg.name)
    return IndexPublished(index_id=pointer["index_id"], moved=True, previous=pointer.get("rolled_back_from"))
