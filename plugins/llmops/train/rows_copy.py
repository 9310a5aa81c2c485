"""The Arrow copy of a split's Parquet file that training memory-maps, and the rows' canonical order, both made in
memory that does not grow with the split and kept in the run folder so a retried task reuses them.

``Dataset.from_parquet`` and ``Dataset.sort`` do the same work, but the first holds decoded row groups as it
converts and the second reads every text of the memory-mapped table into the process: the job's memory grew with
its snapshot. Here the Parquet file is read through a buffered stream, one batch of :data:`BATCH_ROWS` at a time,
into an Arrow stream file (written under a temporary name, then renamed), and the order is found from that file
read the same way (:func:`llmops.data.snapshots.split_order.canonical_order`).

The copy is named by the source file's resolved path, size and modification time, as ``datasets`` names the
copies it makes, and that name is the dataset's fingerprint.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from llmops.atomic import atomic_file
from llmops.data.snapshots.writer import CONTENT_COLUMNS as COLUMNS  # the columns of the canonical order
from llmops.errors import DataError

BATCH_ROWS = 2000  # rows per record batch of the copy
READ_BUFFER = 1 << 20  # bytes per buffered read of the Parquet file: with pre_buffer off, memory stays at one batch
COPY_VERSION = 1  # part of the name: bump when the copy's layout changes


@dataclass(frozen=True)
class ArrowCopy:
    path: Path  # the Arrow stream file
    key: str
    rows: int

    def batches(self, columns: list[str] | None = None) -> Iterator:
        """The copy's record batches, read (not memory-mapped) one at a time."""
        import pyarrow as pa

        with pa.OSFile(str(self.path), "rb") as f:
            for batch in pa.ipc.open_stream(f):
                yield batch.select(columns) if columns else batch

    def order(self) -> np.ndarray:
        """Row numbers in the canonical order (cached next to the copy)."""
        from llmops.data.snapshots.split_order import canonical_order

        saved = self.path.with_suffix(".order.npy")
        if saved.exists():
            return np.load(saved)
        order = canonical_order(self.batches, self.rows, COLUMNS)
        with atomic_file(saved, suffix=".npy") as tmp:
            np.save(tmp, order)
        return order

    def dataset(self):
        """The copy memory-mapped as a ``datasets.Dataset`` in file order."""
        from datasets import Dataset
        from datasets.table import MemoryMappedTable

        return Dataset(MemoryMappedTable.from_file(str(self.path)), fingerprint=self.key)


def arrow_copy(parquet: Path, folder: Path) -> ArrowCopy:
    """The Arrow copy of ``parquet``'s prompt and response columns under ``folder``, made if it is not there."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    parquet = Path(parquet)
    if not parquet.is_file():
        raise FileNotFoundError(f"{parquet}: no such Parquet file of training rows")
    st = parquet.stat()
    key = hashlib.sha256(json.dumps([str(parquet.resolve()), st.st_size, st.st_mtime_ns, COLUMNS,
                                     COPY_VERSION]).encode()).hexdigest()[:16]
    source = pq.ParquetFile(parquet, buffer_size=READ_BUFFER, pre_buffer=False)
    missing = [c for c in COLUMNS if c not in source.schema_arrow.names]
    if missing:
        raise DataError(f"{parquet}: missing column(s) {missing} (has {source.schema_arrow.names})")
    rows = source.metadata.num_rows
    out = Path(folder) / f"rows-{key}.arrow"
    if out.exists():
        return ArrowCopy(out, key, rows)
    schema = pa.schema([source.schema_arrow.field(c) for c in COLUMNS])
    with atomic_file(out) as tmp, pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_stream(sink, schema) as writer:
        for batch in source.iter_batches(batch_size=BATCH_ROWS, columns=COLUMNS):
            writer.write_batch(batch)
    return ArrowCopy(out, key, rows)
