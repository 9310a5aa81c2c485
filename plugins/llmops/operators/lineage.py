"""OpenLineage for our operators: each reports what it read and wrote through the provider's operator hook.

An operator mixes in :class:`ReportsLineage` and implements ``lineage_of(result)`` with a builder of
:mod:`llmops.lineage.steps` (the COMPLETE event: inputs and outputs) and, where its inputs are known before it
runs (the upstream task's payload, rendered into the operator's fields), ``inputs_at_start()`` (the START event).
The task's return value is kept on the operator by Airflow's ``post_execute`` hook (in the task process), because
the provider calls ``get_openlineage_facets_on_complete`` in a forked child where reading XCom back through the
supervisor can hang. Without the provider, or with it disabled, nothing of this runs; an error in it is logged by
the provider and never fails the task.
"""

from __future__ import annotations


def _keep_result(context, result) -> None:
    context["task"].lineage_result = result


class ReportsLineage:
    """Mixin for our operators (before ``BaseOperator`` in the bases)."""

    lineage_result = None

    def __init__(self, *args, post_execute=None, **kwargs):
        def post(context, result):
            _keep_result(context, result)
            if post_execute is not None:
                post_execute(context, result)

        super().__init__(*args, post_execute=post, **kwargs)

    def lineage_of(self, result):
        """The step's :class:`llmops.lineage.steps.StepLineage` from the task's return value."""
        raise NotImplementedError

    def inputs_at_start(self):
        """The :class:`llmops.lineage.steps.Ref` datasets this step will read, known before it runs; ``None``
        where they are decided inside ``execute`` (which files an ingest lists, which snapshot finetune picks)."""
        return None

    def get_openlineage_facets_on_start(self):
        from llmops.errors import LLMOpsError
        from llmops.lineage.facets import operator_lineage
        from llmops.lineage.steps import StepLineage

        try:
            inputs = self.inputs_at_start()
        except (KeyError, TypeError, ValueError, AttributeError, LLMOpsError):  # upstream payload not rendered
            inputs = None
        return operator_lineage(StepLineage(inputs or [], []))

    def get_openlineage_facets_on_complete(self, task_instance):
        from llmops.lineage.facets import operator_lineage

        if not self.lineage_result:
            return None
        return operator_lineage(self.lineage_of(self.lineage_result))


def _store(use_case: str):
    from llmops.config import load_by_name
    from llmops.data.snapshots.store import store_for

    return store_for(load_by_name(use_case))  # the use case's own snapshots.root decides the namespace


def snapshot_uri(use_case: str, snapshot_id: str) -> str:
    return _store(use_case).uri(snapshot_id)


def trained_snapshot_uri(use_case: str, trained) -> str:
    """The URI of the snapshot a ``finetune`` payload (:class:`llmops.payloads.Trained`) was trained on."""
    from llmops.payloads import Trained

    return snapshot_uri(use_case, Trained.from_xcom(trained).snapshot_id)


def snapshot_manifest(use_case: str, snapshot_id: str) -> dict | None:
    return _store(use_case).manifest(snapshot_id)


def registry_uri() -> str:
    from llmops import paths

    return paths.tracking_uri()


def model_name(use_case: str) -> str:
    from llmops.config import load_by_name

    return load_by_name(use_case).model_name
