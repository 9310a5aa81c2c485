"""corpus -> build -> evaluate -> gate -> publish: the index DAG's operators, each one call of
:mod:`llmops.steps.index`. Ids travel on XCom (snapshot id, index id), never passages or vectors."""

from __future__ import annotations

from airflow.sdk import Asset

from llmops.operators.base import UseCaseOperator


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
