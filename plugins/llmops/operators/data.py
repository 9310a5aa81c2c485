"""ingest -> validate -> snapshot: the dataset DAG's operators. Rows travel by reference (a staged Parquet file)
and stream through each task in batches (``LLMOPS_BATCH_ROWS``, default 100,000), so memory stays flat.

A partitioned run (``dag_run.partition_key``, or ``{"partition_key": ...}`` in its conf) ingests only the rows
of its interval; a run without a key reads the whole source. A partition with no rows skips the rest of the run.
"""

from __future__ import annotations

import logging

from llmops.operators.base import UseCaseOperator
from llmops.operators.common import dataset_asset
from llmops.operators.links import SnapshotManifestLink, ValidationReportLink
from llmops.payloads import Snapshot, Staged, Validation

log = logging.getLogger(__name__)


def run_partition(context) -> str | None:
    dag_run = context.get("dag_run")
    key = getattr(dag_run, "partition_key", None)
    if not key:
        key = ((getattr(dag_run, "conf", None) or {}).get("partition_key")) or None
    return key


class IngestOperator(UseCaseOperator):
    """Read the run's partition of the source, prepare it (normalize, limit, de-duplicate), stage it as Parquet."""

    ui_color = "#e8f4fd"

    def run_step(self, context, cfg):
        from llmops.steps.ingest import ingest

        return ingest(cfg, run_id=context["run_id"], partition_key=run_partition(context))

    def lineage_inputs(self, result=None):
        from llmops.lineage import steps

        return steps.ingest_inputs(result)

    def lineage_outputs(self, result):
        from llmops.lineage import steps

        return steps.ingest_outputs(result)


class ValidateOperator(UseCaseOperator):
    """Run the use case's great-expectations suite on the staged rows; fail without retry, naming rows."""

    payload_fields = ("ingested",)
    ui_color = "#fdf1e8"
    operator_extra_links = (ValidationReportLink(),)

    def __init__(self, *, use_case: str, ingested, **kwargs):
        super().__init__(use_case=use_case, **kwargs)
        self.ingested = ingested

    def run_step(self, context, cfg):
        from llmops.steps.validate import validate

        return validate(cfg, Staged.from_xcom(self.ingested), run_id=context["run_id"])

    def lineage_inputs(self, result=None):  # the assertions come with the COMPLETE event
        from llmops.lineage import steps

        return steps.validate_inputs(Staged.from_xcom(self.ingested), result)

    def lineage_outputs(self, result):
        from llmops.lineage import steps

        return steps.validate_outputs(result)


class SnapshotOperator(UseCaseOperator):
    """Write the validated rows as a content-addressed snapshot and emit the dataset Asset event."""

    payload_fields = ("ingested", "validation")
    ui_color = "#e8fdf0"
    operator_extra_links = (SnapshotManifestLink(),)

    def __init__(self, *, use_case: str, ingested, validation, **kwargs):
        kwargs.setdefault("outlets", [dataset_asset(use_case)])
        super().__init__(use_case=use_case, **kwargs)
        self.ingested = ingested
        self.validation = validation

    def run_step(self, context, cfg):
        from llmops.steps.snapshot import snapshot

        snap = snapshot(cfg, Staged.from_xcom(self.ingested), Validation.from_xcom(self.validation),
                        run_id=context["run_id"])
        context["outlet_events"][dataset_asset(self.use_case)].extra = snap.to_xcom()
        return snap

    def lineage_inputs(self, result=None):
        from llmops.lineage import steps

        return steps.snapshot_inputs(Staged.from_xcom(self.ingested))

    def lineage_outputs(self, result: Snapshot):
        from llmops.lineage import steps
        from llmops.operators import lineage

        return steps.snapshot_outputs(result, lineage.snapshot_manifest(self.config, result.snapshot_id))
