"""The ingest step: read the run's partition of the source, prepare it, stage it as Parquet in the run folder."""

from __future__ import annotations

import logging

from llmops.config import UseCaseConfig
from llmops.errors import NothingToDo
from llmops.payloads import Staged

log = logging.getLogger(__name__)


def ingest(cfg: UseCaseConfig, *, run_id: str, partition_key: str | None = None) -> Staged:
    """Stage the rows of ``partition_key``'s interval (the whole source without a key) at
    ``<run dir>/ingested.parquet``. Raises :class:`NothingToDo` when the partition has no rows."""
    from llmops import paths
    from llmops.data.partitions import interval_dict, partition_interval
    from llmops.data.stage import stage

    run_dir = paths.run_dir(cfg.name, run_id)
    interval = partition_interval(cfg.schedule or "@weekly", partition_key) if partition_key else None
    log.info("partition %s: interval %s", partition_key or "(none: the whole source)", interval_dict(interval))
    staged = run_dir / "ingested.parquet"
    result = stage(cfg.source, cfg.prepare, staged, interval=interval, work_dir=run_dir / "download")
    if not result["rows"]:
        raise NothingToDo(f"no rows for partition {partition_key} {interval_dict(interval)}: nothing to snapshot")
    log.info("staged %d rows at %s; steps %s", result["rows"], staged, result["steps"])
    return Staged(uri=str(staged), rows=result["rows"], source=result["source"], steps=result["steps"],
                  partition_key=partition_key, interval=interval_dict(interval))
