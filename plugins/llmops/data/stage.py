"""Ingest + prepare, streamed: read the source batch by batch, prepare each batch (de-duplicating across the
whole partition) and append it to one staged Parquet file, written atomically. The dataset DAG's ingest task;
validation and the snapshot then read the staged file batch by batch too.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path

from llmops.atomic import atomic_file
from llmops.config import PrepareConfig, SourceConfig
from llmops.data.batches import ParquetSink, SeenHashes, merge_steps
from llmops.data.ingest import iter_source
from llmops.data.prepare import prepare

log = logging.getLogger(__name__)


def stage(source: SourceConfig, prepare_cfg: PrepareConfig, out: Path, *,
          interval: tuple[datetime, datetime] | None = None, work_dir: Path | None = None) -> dict:
    """Write the prepared rows of ``source`` within ``interval`` to ``out`` (Parquet).

    Returns ``{"rows", "steps", "source"}``: rows staged, per-step row counts (ingest first), and the lineage
    of the read. With no rows, nothing is written (``rows`` is 0). A failure leaves no file behind."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    batches, lineage = iter_source(source, interval, work_dir)
    seen, steps, read = SeenHashes(), [], 0
    with atomic_file(out) as tmp:  # no rows: the sink removes its file, and nothing is published
        sink = ParquetSink(tmp)
        try:
            for n, df in enumerate(batches, start=1):
                read += len(df)
                df, batch_steps = prepare(df, prepare_cfg, seen)
                merge_steps(steps, batch_steps)
                if len(df):
                    sink.write(df)
                log.info("batch %d: %d rows read, %d staged so far", n, read, sink.rows)
        except BaseException:
            sink.abort()
            raise
        if sink.rows:
            sink.close()
        else:
            sink.abort()
    steps = [{"step": "ingest", "rows_in": read, "rows_out": read}, *steps]
    for s in steps:
        if s["rows_out"] != s["rows_in"]:
            log.info("%s: %d -> %d rows", s["step"], s["rows_in"], s["rows_out"])
    return {"rows": sink.rows, "steps": steps, "source": lineage}
