"""The snapshot step: the validated rows written as a content-addressed snapshot (or found already written)."""

from __future__ import annotations

import logging

from llmops.config import UseCaseConfig
from llmops.payloads import Snapshot, Staged, Validation

log = logging.getLogger(__name__)


def snapshot(cfg: UseCaseConfig, staged: Staged, validation: Validation, *, run_id: str) -> Snapshot:
    """Write the snapshot (the validation report copied in) and record it in the run's summary; the payload is
    the dataset Asset event's ``extra``."""
    from pathlib import Path
    from urllib.parse import urlparse
    from urllib.request import url2pathname

    from llmops.data.snapshots.handle import Snapshots
    from llmops.runs import record_step

    report = validation.report
    manifest = Snapshots.of(cfg).write_file(
        staged.uri, source=staged.source, validation=validation.summary(),
        interval=staged.interval, steps=staged.steps, partition_key=staged.partition_key,
        report_dir=Path(url2pathname(urlparse(report).path)).parent if report else None,
    )
    out = Snapshot(snapshot_id=manifest["snapshot_id"], uri=manifest["uri"], rows=manifest["rows"],
                   interval=staged.interval, partition_key=staged.partition_key)
    record_step(cfg.name, run_id, "snapshot", out.to_xcom())
    log.info("snapshot %s: %s", manifest["snapshot_id"], manifest["rows"])
    return out
