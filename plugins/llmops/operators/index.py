"""corpus -> build -> evaluate -> gate -> publish: the index DAG's operators, each one call of
:mod:`llmops.steps.index`. Ids travel on XCom (snapshot id, index id), never passages or vectors."""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import Asset

from llmops.operators.base import UseCaseOperator


def _folder(use_case: str, index_id: str) -> str:
    from llmops.retrieval.build import indexes_root

    return str(indexes_root(use_case) / index_id)


def _evaluation(use_case: str, index_id: str) -> str:
    from llmops.retrieval.live import evaluation_path

    return str(evaluation_path(use_case, index_id))


def _table(manifest: dict):
    """The pgvector table of a version, named by its connection's host, port and database (None: embedded, or
    the connection cannot be resolved here)."""
    from llmops.errors import LLMOpsError
    from llmops.lineage.index import pg_table
    from llmops.retrieval.pgvector import connection_url

    meta = manifest.get("pgvector")
    if manifest.get("backend") != "pgvector" or not meta:
        return None
    try:
        return pg_table(connection_url(meta["conn_id"]), meta["schema_name"], meta["table"])
    except LLMOpsError:
        return None


def index_asset(use_case: str) -> Asset:
    """Emitted when ``live`` moves (extra: the index id), so a server can reload its index."""
    return Asset(name=f"{use_case}__index", uri=f"llmops://indexes/{use_case}", group="llmops-indexes")


class CorpusSnapshotOperator(UseCaseOperator):
    """The pinned corpus snapshot (``snapshot_id``), or a new one read, validated and written now."""

    other_template_fields = ("snapshot_id",)
    ui_color = "#e8fdf0"

    def __init__(self, *, use_case: str, snapshot_id: str | None = None, **kwargs):
        super().__init__(use_case=use_case, **kwargs)
        self.snapshot_id = snapshot_id

    def run_step(self, context, cfg):
        from llmops.steps.index import corpus

        return corpus(cfg, self.snapshot_id or None)

    def _manifest(self, result):
        from llmops.retrieval import corpus as corpora

        return corpora.store(self.config).manifest(result.snapshot_id)

    def lineage_inputs(self, result=None):  # the source files are known from the snapshot's manifest only
        from llmops.lineage import index

        return index.corpus_inputs(self._manifest(result) if result is not None else None)

    def lineage_outputs(self, result):
        from llmops.lineage import index
        from llmops.retrieval import corpus as corpora

        uri = corpora.store(self.config).uri(result.snapshot_id)
        return index.corpus_outputs(result, uri, self._manifest(result))


class BuildIndexOperator(UseCaseOperator):
    """Chunk, embed (reusing unchanged passages' vectors) and write the index version, atomically."""

    payload_fields = ("snapshot",)

    def __init__(self, *, use_case: str, snapshot, **kwargs):
        super().__init__(use_case=use_case, **kwargs)
        self.snapshot = snapshot

    def run_step(self, context, cfg):
        from llmops.payloads import CorpusSnapshot
        from llmops.steps.index import build

        return build(cfg, CorpusSnapshot.from_xcom(self.snapshot))

    def lineage_inputs(self, result=None):
        from llmops.lineage import index
        from llmops.payloads import CorpusSnapshot
        from llmops.retrieval import corpus as corpora

        snap = CorpusSnapshot.from_xcom(self.snapshot)
        return index.build_inputs(snap, corpora.store(self.config).uri(snap.snapshot_id),
                                  self.config.retrieval.embedding_model)

    def lineage_outputs(self, result):
        from llmops.lineage import index
        from llmops.retrieval.build import read_manifest

        folder = _folder(self.use_case, result.index_id)
        manifest = read_manifest(Path(folder)) or {}
        return index.build_outputs(result, folder, manifest, _table(manifest))


class EvaluateIndexOperator(UseCaseOperator):
    """bm25, dense and hybrid on the labelled questions; the DAG run's MLflow run holds the figures."""

    payload_fields = ("built",)

    def __init__(self, *, use_case: str, built, **kwargs):
        super().__init__(use_case=use_case, **kwargs)
        self.built = built

    def run_step(self, context, cfg):
        from llmops.payloads import IndexBuilt
        from llmops.steps.index import evaluate

        return evaluate(cfg, IndexBuilt.from_xcom(self.built), run_id=context["run_id"])

    def lineage_inputs(self, result=None):
        from llmops import paths
        from llmops.lineage import index
        from llmops.payloads import IndexBuilt

        built = IndexBuilt.from_xcom(self.built)
        return index.evaluate_inputs(built, _folder(self.use_case, built.index_id),
                                     str(paths.resolve(self.config.retrieval.questions)))

    def lineage_outputs(self, result):
        from llmops.lineage import index

        return index.evaluate_outputs(result, _evaluation(self.use_case, result.index_id))


class IndexGateOperator(UseCaseOperator):
    """The retrieval gate against the live index."""

    payload_fields = ("evaluated",)

    def __init__(self, *, use_case: str, evaluated, **kwargs):
        super().__init__(use_case=use_case, **kwargs)
        self.evaluated = evaluated

    def run_step(self, context, cfg):
        from llmops.payloads import RetrievalEvaluated
        from llmops.steps.index import gate

        return gate(cfg, RetrievalEvaluated.from_xcom(self.evaluated))

    def lineage_inputs(self, result=None):  # the live index compared with is found inside execute
        from llmops.lineage import index
        from llmops.payloads import RetrievalEvaluated

        evaluated = RetrievalEvaluated.from_xcom(self.evaluated)
        live = result.live if result is not None and result.live != evaluated.index_id else None
        return index.gate_inputs(evaluated, _evaluation(self.use_case, evaluated.index_id),
                                 _evaluation(self.use_case, live) if live else None)

    def lineage_outputs(self, result):
        from llmops.lineage import index

        return index.gate_outputs(result)


class PublishIndexOperator(UseCaseOperator):
    """Move ``live`` to the version the gate passed (a refused one skips this task) and emit the index Asset."""

    payload_fields = ("decision",)
    ui_color = "#fdebd0"

    def __init__(self, *, use_case: str, decision, **kwargs):
        kwargs.setdefault("outlets", [index_asset(use_case)])
        super().__init__(use_case=use_case, **kwargs)
        self.decision = decision

    def run_step(self, context, cfg):
        from llmops.payloads import IndexDecision
        from llmops.steps.index import publish

        result = publish(cfg, IndexDecision.from_xcom(self.decision))
        context["outlet_events"][index_asset(self.use_case)].extra = {"index_id": result.index_id, "alias": "live"}
        return result

    def lineage_inputs(self, result=None):
        from llmops.lineage import index
        from llmops.payloads import IndexDecision

        decision = IndexDecision.from_xcom(self.decision)
        return index.publish_inputs(decision, _folder(self.use_case, decision.index_id))

    def lineage_outputs(self, result):
        from llmops.lineage import index
        from llmops.retrieval.build import indexes_root

        return index.publish_outputs(result, str(indexes_root(self.use_case) / "live.json"))
