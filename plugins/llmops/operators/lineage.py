"""OpenLineage for our operators: each reports what it read and wrote through the provider's operator hooks.

An operator mixes in :class:`ReportsLineage` (through :class:`llmops.operators.base.UseCaseOperator`) and
implements, with the builders of :mod:`llmops.lineage.steps`, ``lineage_inputs(result=None)`` (the datasets it
reads: before the run from the rendered upstream payloads, for the START event; with its own result for the
COMPLETE event) and ``lineage_outputs(result)`` (what it wrote). ``result`` is the step's typed payload, kept on
the operator by ``execute`` (in the task process), because the provider calls
``get_openlineage_facets_on_complete`` in a forked child where reading XCom back through the supervisor can hang.
Without the provider, or with it disabled, nothing of this runs; an error in it is logged by the provider and
never fails the task.
"""

from __future__ import annotations


class ReportsLineage:
    """Mixin for our operators (before ``BaseOperator`` in the bases)."""

    lineage_result = None  # the step's typed payload, set by execute

    def lineage_inputs(self, result=None) -> list:
        """The :class:`llmops.lineage.steps.Ref` datasets this step reads. Without ``result``: those known before
        it runs (empty where they are decided inside ``execute``: which files an ingest lists, which snapshot
        finetune picks)."""
        return []

    def lineage_outputs(self, result):
        """The step's :class:`llmops.lineage.steps.StepOutputs` from its result; None: no lineage of its own."""
        return None

    def get_openlineage_facets_on_start(self):
        from llmops.errors import LLMOpsError
        from llmops.lineage.facets import operator_lineage
        from llmops.lineage.steps import StepLineage

        try:
            inputs = self.lineage_inputs()
        except (KeyError, TypeError, ValueError, AttributeError, LLMOpsError):  # upstream payload not rendered
            inputs = None
        return operator_lineage(StepLineage.of(inputs or []))

    def get_openlineage_facets_on_complete(self, task_instance):
        from llmops.lineage.facets import operator_lineage
        from llmops.lineage.steps import StepLineage

        if self.lineage_result is None:
            return None
        out = self.lineage_outputs(self.lineage_result)
        if out is None:
            return None
        return operator_lineage(StepLineage.of(self.lineage_inputs(self.lineage_result), out))


def snapshot_uri(cfg, snapshot_id: str) -> str:
    """The URI of a snapshot of the use case (its own ``snapshots.root`` decides the namespace)."""
    from llmops.data.snapshots.store import store_for

    return store_for(cfg).uri(snapshot_id)


def snapshot_manifest(cfg, snapshot_id: str) -> dict | None:
    from llmops.data.snapshots.store import store_for

    return store_for(cfg).manifest(snapshot_id)


def registry_uri() -> str:
    from llmops import paths

    return paths.tracking_uri()
