"""The canonical order of a split's rows (by prompt, then response, as
:meth:`llmops.data.snapshots.handle.Snapshots.load_split` sorts them) computed over a stream of Arrow record
batches, in memory that does not grow with the text.

Sorting a memory-mapped Arrow table reads every string into the process, and those pages stay resident, so a
training job's memory would grow with its snapshot. Here the rows are ranked by fixed-width byte chunks of their
texts instead. Each pass reads the batches once, takes the next ``width`` bytes of every row that is still tied
with another, and sorts those rows by (tie group, null, chunk, chunk length). Texts that share a long beginning
take more passes, each over fewer rows and so with wider chunks (``width`` is :data:`CHUNK_BUDGET` over the rows
still tied); a row alone in its group is done. UTF-8 byte order is code point order, so the result is exactly
``DataFrame.sort_values(columns, kind="stable")``: identical rows keep their order in the file, nulls sort last.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pyarrow as pa

log = logging.getLogger(__name__)

CHUNK_BUDGET = 32 << 20  # bytes of text chunks one pass holds
MIN_WIDTH, MAX_WIDTH = 8, 4096  # bytes per row per pass (a multiple of 8: chunks are compared as uint64 words)
GATHER_BYTES = 8 << 20  # bytes of the byte-index matrix built at once when cutting chunks out of a batch


def canonical_order(batches: Callable[[list[str]], Iterable[pa.RecordBatch]], rows: int, columns: Sequence[str],
                    budget: int = CHUNK_BUDGET) -> np.ndarray:
    """Row numbers in the canonical order. ``batches(names)`` yields the rows as record batches holding (at least)
    the named columns, in file order, and may be called once per pass; ``rows`` is how many there are."""
    columns = list(columns)
    rank = np.zeros(rows, np.int64)  # where the row's tie group starts in the final order
    col = np.zeros(rows, np.int8)  # the column the group is still tied on
    off = np.zeros(rows, np.int64)  # bytes of that column compared so far
    todo = np.arange(rows, dtype=np.int64) if rows > 1 else np.empty(0, np.int64)
    passes = 0
    while len(todo):
        passes += 1
        width = int(np.clip(budget // len(todo) // 8 * 8, MIN_WIDTH, MAX_WIDTH))
        chunk, length, remaining = _read_chunks(batches, rows, columns, todo, col, off, width)
        done = _refine(todo, rank, col, off, chunk, length, remaining, width, len(columns))
        log.debug("canonical order: pass %d at %d bytes per row over %d tied rows", passes, width, len(todo))
        todo = todo[~done]
    if passes > 1:
        log.info("canonical order of %d rows in %d passes", rows, passes)
    return np.argsort(rank, kind="stable")


def _read_chunks(batches, rows: int, columns: list[str], todo, col, off, width: int):
    """For each row of ``todo``: ``width`` bytes of its column from its offset (zero padded), how many of them are
    text, and how many bytes of the text are left from the offset (-1 for a null)."""
    chunk = np.zeros((len(todo), width), np.uint8)
    length = np.zeros(len(todo), np.int64)
    remaining = np.zeros(len(todo), np.int64)
    needed = np.unique(col[todo]).tolist()
    start = 0
    for batch in batches([columns[c] for c in needed]):
        end = start + batch.num_rows
        lo, hi = np.searchsorted(todo, [start, end])
        for c in needed:
            picked = np.arange(lo, hi)[col[todo[lo:hi]] == c]
            if len(picked):
                array = batch.column(columns[c])
                _cut(array, todo[picked] - start, off[todo[picked]], width,
                     chunk, length, remaining, picked)
        start = end
    if start != rows:
        raise ValueError(f"expected {rows} rows, the batches held {start}")
    return chunk, length, remaining


def _cut(array: pa.Array, local, begin_at, width: int, chunk, length, remaining, into) -> None:
    if not (pa.types.is_large_binary(array.type) or pa.types.is_large_string(array.type)):
        array = array.cast(pa.large_string() if pa.types.is_string(array.type) else pa.large_binary())
    _, offsets_buf, data_buf = array.buffers()
    offsets = np.frombuffer(offsets_buf, np.int64, count=len(array) + 1, offset=array.offset * 8)
    data = np.frombuffer(data_buf, np.uint8) if data_buf is not None and data_buf.size else np.zeros(1, np.uint8)
    begin = offsets[local] + begin_at
    left = offsets[local + 1] - begin
    if array.null_count:
        left = np.where(array.is_null().to_numpy(zero_copy_only=False)[local], -1, left)
    n = np.clip(left, 0, width)
    remaining[into], length[into] = left, n
    step = max(1, GATHER_BYTES // (8 * width))
    cols = np.arange(width)
    for s in range(0, len(local), step):
        e = min(s + step, len(local))
        mask = cols < n[s:e, None]
        if mask.any():
            chunk[into[s:e]] = np.where(mask, data[np.where(mask, begin[s:e, None] + cols, 0)], 0)


def _refine(todo, rank, col, off, chunk, length, remaining, width: int, n_columns: int) -> np.ndarray:
    """Sort the tied rows by their new chunk within their groups, give the new groups their ranks and move each
    group on; return which rows of ``todo`` are done (alone in their group, or identical to the rest of it)."""
    words = chunk.view(">u8")  # big-endian words compare as the bytes do
    null = remaining < 0
    keys = [length, *(words[:, j] for j in range(words.shape[1] - 1, -1, -1)), null, rank[todo]]
    idx = np.lexsort(keys)  # the last key first; stable, and todo is in file order
    k = len(idx)
    new_group = np.zeros(k, bool)
    new_group[0] = True
    for key in keys:
        s = key[idx]
        new_group[1:] |= s[1:] != s[:-1]
    old = rank[todo][idx]
    old_group = np.r_[True, old[1:] != old[:-1]]
    pos = np.arange(k)
    rank[todo[idx]] = old + (np.maximum.accumulate(np.where(new_group, pos, 0))
                             - np.maximum.accumulate(np.where(old_group, pos, 0)))
    starts = np.flatnonzero(new_group)
    sizes = np.diff(np.r_[starts, k])
    longer = np.maximum.reduceat(remaining[idx], starts) > width  # some text of the group goes on past this chunk
    rows = todo[idx]
    size_of, longer_of = np.repeat(sizes, sizes), np.repeat(longer, sizes)
    off[rows[longer_of]] += width
    ended = ~longer_of  # the group's texts are equal in this column: compare the next one
    col[rows[ended]] += 1
    off[rows[ended]] = 0
    done_sorted = (size_of == 1) | (col[rows] >= n_columns)
    done = np.empty(k, bool)
    done[idx] = done_sorted
    return done
