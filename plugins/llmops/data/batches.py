"""Streaming helpers shared by ingest, validation and snapshots: the batch size, Parquet batch reading and
writing, 64-bit row hashes, and a set of hashes seen in earlier batches (for exact de-duplication, uniqueness
and the leakage check across a whole partition without holding its rows in memory).

Memory: a partition is processed one batch at a time; what grows with the partition is 8 bytes per row per
hash set (32 MB per million rows at most, across the three sets), not the rows themselves.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

DEFAULT_BATCH_ROWS = 100_000


def batch_rows() -> int:
    """Rows per batch: ``LLMOPS_BATCH_ROWS`` or 100,000 (about 50 MB of Stack-Overflow-sized rows)."""
    return max(1, int(os.environ.get("LLMOPS_BATCH_ROWS", DEFAULT_BATCH_ROWS)))


def hash64(values: Iterable[str], salt: str = "", lanes: int = 1) -> np.ndarray:
    """The first 8 bytes of sha256(salt + value) of each value, as unsigned 64-bit integers (with ``lanes=2``,
    the first 16 bytes as two columns)."""
    sha = hashlib.sha256
    width = 8 * lanes
    digests = b"".join([sha((salt + v).encode("utf-8", "surrogatepass")).digest()[:width] for v in values])
    out = np.frombuffer(digests, dtype=">u8").astype(np.uint64)
    return out if lanes == 1 else out.reshape(-1, lanes)


NULL = "\x00"  # how a missing value is hashed (no text contains it: validation rejects control characters)


def text_values(series: pd.Series) -> list[str]:
    """Each value as text for hashing: timestamps in ISO form, missing values as NULL."""
    if pd.api.types.is_datetime64_any_dtype(series.dtype):
        import pyarrow as pa

        texts = pa.array(series).cast(pa.string()).to_pylist()
        return [NULL if v is None else v for v in texts]
    values = series.tolist()
    if pd.api.types.is_string_dtype(series.dtype) and not series.hasnans:
        return [str(v) for v in values] if pd.api.types.is_object_dtype(series.dtype) else values
    return [NULL if v is None or v is pd.NA or (isinstance(v, float) and v != v) else str(v) for v in values]


def row_hash(df: pd.DataFrame, columns: list[str], lanes: int = 1) -> np.ndarray:
    """A 64-bit hash of each row's values in ``columns`` (joined with a unit separator); ``lanes=2``: 128 bits."""
    if len(columns) == 1:
        return hash64(text_values(df[columns[0]]), lanes=lanes)
    cols = [text_values(df[c]) for c in columns]
    return hash64(("\x1f".join(parts) for parts in zip(*cols, strict=True)), lanes=lanes)


class SeenHashes:
    """The hashes seen in earlier batches, as one sorted array (8 bytes per distinct row)."""

    def __init__(self) -> None:
        self._seen = np.empty(0, dtype=np.uint64)

    def __len__(self) -> int:
        return len(self._seen)

    def contains(self, hashes: np.ndarray) -> np.ndarray:
        if not len(self._seen):
            return np.zeros(len(hashes), dtype=bool)
        pos = np.searchsorted(self._seen, hashes)
        pos[pos == len(self._seen)] = 0
        return self._seen[pos] == hashes

    def add(self, hashes: np.ndarray) -> None:
        new = np.unique(hashes)
        if len(self._seen):
            new = new[~self.contains(new)]
        if len(new):
            merged = np.concatenate([self._seen, new])
            merged.sort(kind="stable")
            self._seen = merged

    def first_seen(self, hashes: np.ndarray) -> np.ndarray:
        """True for rows whose hash neither appeared in an earlier batch nor earlier in this one; records them."""
        keep = ~pd.Series(hashes).duplicated().to_numpy() & ~self.contains(hashes)
        self.add(hashes[keep])
        return keep


def iter_parquet(path: Path | str, rows: int | None = None) -> Iterator[pd.DataFrame]:
    """A Parquet file as pandas frames of at most ``rows`` rows (``batch_rows()`` by default)."""
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path, pre_buffer=False)  # pre-buffering keeps what it read: memory grew with the file
    if pf.metadata.num_rows == 0:
        yield pf.schema_arrow.empty_table().to_pandas()
        return
    for batch in pf.iter_batches(batch_size=rows or batch_rows()):
        yield batch.to_pandas()


class ParquetSink:
    """Append pandas frames to one Parquet file; every batch is cast to the first batch's schema."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.rows = 0
        self._writer = None
        self.schema = None

    def write(self, df: pd.DataFrame) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(df, preserve_index=False)
        if self._writer is None:
            self.schema = table.schema.remove_metadata()
            self._writer = pq.ParquetWriter(self.path, self.schema)
        elif table.schema.remove_metadata() != self.schema:
            table = table.select(self.schema.names).cast(self.schema)
        self._writer.write_table(table)
        self.rows += len(df)

    def abort(self) -> None:
        """Close and remove the file (after a failure, or when nothing should be kept)."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None
        self.path.unlink(missing_ok=True)

    def close(self, empty_like: pd.DataFrame | None = None) -> None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        if self._writer is None:  # nothing written: still leave a valid, empty file
            pq.write_table(pa.Table.from_pandas(empty_like if empty_like is not None else pd.DataFrame(),
                                                preserve_index=False), self.path)
            return
        self._writer.close()


def merge_steps(total: list[dict], steps: list[dict]) -> list[dict]:
    """Add one batch's per-step row counts to the running totals (matched by step name)."""
    by_name = {s["step"]: s for s in total}
    for s in steps:
        if s["step"] in by_name:
            by_name[s["step"]]["rows_in"] += s["rows_in"]
            by_name[s["step"]]["rows_out"] += s["rows_out"]
        else:
            total.append(dict(s))
            by_name[s["step"]] = total[-1]
    return total
