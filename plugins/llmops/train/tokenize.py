"""Training examples through Hugging Face ``datasets``: rows memory-mapped, tokenized in batches by worker
processes, and cached in the run folder.

The rows come from the snapshot's train Parquet (its Arrow copy under the run folder, memory-mapped, and the
canonical order ``Snapshots.load_split`` uses, by prompt then response, both made in bounded memory
by :mod:`llmops.train.rows_copy`) or from an in-memory frame (taken in its given order, as
:func:`llmops.train.lora.finetune` always did). ``max_rows`` keeps the first N rows of that order, like
``DataFrame.head``. The rows are tokenized in the order they lie in the file, a window at a time, and the result
is put in the canonical order by a ``select`` (an index mapping, not a copy).

The encoding is :func:`llmops.model.encoding.encode_batch`, the one encoder evaluation and serving use too (the
prompt part cut to its last ``max_len - 1`` tokens, then the response part, labels -100 on the prompt part), called
on each batch of :data:`BATCH_ROWS` rows; ``map(batched=True, num_proc=...)`` spreads the batches over the
worker's cores.

The result is Arrow files under ``<run folder>/tokenized/``, named by a hash of the rows' ``datasets`` fingerprint,
the tokenizer, the prompt template and ``max_len``: a retried task finds them and reuses them ("reused cached
tokenization") instead of tokenizing again. ``datasets`` writes each file to a temporary name and renames it, so
a task killed half-way leaves no partial cache behind.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from llmops.errors import DataError
from llmops.model.encoding import IGNORE, encode_batch
from llmops.prompts import PromptTemplate
from llmops.train.rows_copy import COLUMNS, arrow_copy

log = logging.getLogger(__name__)

ENCODING_VERSION = 2  # part of the cache key: bump when the token format of encoding.encode_batch changes
BATCH_ROWS = 1000  # rows per map() batch: one chat-template call and two tokenizer calls each
MAX_WORKERS = 8
MIN_ROWS_PER_WORKER = 5000  # below this, starting worker processes costs more than it saves
WINDOW_ROWS_PER_WORKER = 25_000  # rows a worker process tokenizes before the next window starts new ones


def _encode_rows(batch: dict, tokenizer, template: PromptTemplate, max_len: int) -> dict:
    return encode_batch(tokenizer, template, batch["prompt"], batch["response"], max_len)


def tokenizer_hash(tokenizer) -> str:
    """What makes two tokenizers encode alike: their vocabulary and rules, chat template and special tokens."""
    h = hashlib.sha256(type(tokenizer).__name__.encode())
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        h.update(backend.to_str().encode())
    else:  # a slow (Python) tokenizer: its vocabulary
        h.update(json.dumps(sorted(tokenizer.get_vocab().items())).encode())
    h.update(json.dumps([getattr(tokenizer, "chat_template", None), tokenizer.bos_token_id, tokenizer.eos_token_id,
                         str(tokenizer.all_special_tokens)], default=str).encode())
    return h.hexdigest()[:16]


def workers(rows: int, num_proc: int | None = None) -> int:
    """Processes for ``map``: ``num_proc`` if given, else the cores this process may use, at most
    :data:`MAX_WORKERS`, and no more than one per :data:`MIN_ROWS_PER_WORKER` rows."""
    if num_proc is not None:
        return max(1, int(num_proc))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, MAX_WORKERS, rows // MIN_ROWS_PER_WORKER))


def rows_dataset(rows: pd.DataFrame | str | Path, cache_dir: Path, max_rows: int | None = None):
    """The rows to tokenize as ``(ds, positions)``. ``ds`` is a ``datasets.Dataset`` of the chosen rows in the order
    they lie in: a Parquet file's Arrow copy under ``cache_dir``, memory-mapped, so that tokenizing reads it front
    to back; a frame as given. ``positions`` puts the tokenized rows in the canonical order (the first ``max_rows``
    of it), or is None when ``ds`` already is in it."""
    from datasets import Dataset

    if isinstance(rows, pd.DataFrame):
        missing = [c for c in COLUMNS if c not in rows.columns]
        if missing:
            raise DataError(f"training rows (a data frame): missing column(s) {missing} (has {list(rows.columns)})")
        ds = Dataset.from_pandas(rows[COLUMNS].reset_index(drop=True), preserve_index=False)
        return (ds.select(range(max_rows)) if max_rows is not None and max_rows < len(ds) else ds), None
    copy = arrow_copy(Path(rows), Path(cache_dir) / "datasets")
    chosen = copy.order()[:max_rows]
    in_file_order = np.sort(chosen)
    ds = copy.dataset()
    if len(in_file_order) < len(ds):
        ds = ds.select(in_file_order)
    positions = np.searchsorted(in_file_order, chosen)
    return ds, (None if np.array_equal(positions, np.arange(len(positions))) else positions)


def tokenize_dataset(ds, tokenizer, template: PromptTemplate, max_len: int, cache_dir: Path,
                     num_proc: int | None = None, window_rows: int | None = None):
    """``ds`` (prompt, response) encoded as ``input_ids``/``labels``, cached under ``cache_dir``. The rows go to the
    worker processes a window of ``window_rows`` at a time (default :data:`WINDOW_ROWS_PER_WORKER` per worker),
    each window in new processes, so what a worker reads of the memory-mapped rows stays the size of a window."""
    from datasets import concatenate_datasets

    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    key = hashlib.sha256(json.dumps([ds._fingerprint, tokenizer_hash(tokenizer), template.text, max_len,
                                     ENCODING_VERSION]).encode()).hexdigest()[:16]
    stem = f"tokenized-{key}"
    before = {p.name for p in cache_dir.glob(f"{stem}*.arrow")}
    nproc = workers(len(ds), num_proc)
    window = max(1, window_rows or (WINDOW_ROWS_PER_WORKER * nproc if nproc > 1 else len(ds)))
    starts = range(0, len(ds), window) if len(ds) else [0]
    parts = []
    for i, start in enumerate(starts):
        part = ds.select(range(start, min(start + window, len(ds)))) if len(starts) > 1 else ds
        name = stem if len(starts) == 1 else f"{stem}-w{i:05d}"
        wanted = workers(len(part), num_proc) if nproc > 1 else 1
        part_out, got = _map(part, tokenizer, template, max_len, cache_dir / f"{name}.arrow", f"{key}-{i}", wanted)
        if got < wanted:  # no worker processes here: the windows that follow run in this process too
            nproc = 1
        parts.append(part_out)
    out = parts[0] if len(parts) == 1 else concatenate_datasets(parts)
    used = {Path(f["filename"]).name for f in out.cache_files}
    if used and used <= before:
        log.info("reused cached tokenization of %d rows (%s)", len(out), cache_dir / stem)
    else:
        log.info("tokenized %d rows with %d process(es) in %d window(s) into %s", len(out), nproc, len(parts),
                 cache_dir / stem)
    return out


def _map(ds, tokenizer, template: PromptTemplate, max_len: int, cache_file: Path, fingerprint: str, nproc: int):
    """One ``map`` over ``ds`` into ``cache_file``; the processes it used (1 where none can be started here)."""
    from datasets import Features, List, Value

    def run(processes: int):
        return ds.map(
            _encode_rows, batched=True, batch_size=BATCH_ROWS, num_proc=processes if processes > 1 else None,
            fn_kwargs={"tokenizer": tokenizer, "template": template, "max_len": max_len},
            remove_columns=ds.column_names, cache_file_name=str(cache_file),
            load_from_cache_file=True, new_fingerprint=fingerprint, desc="tokenizing",
            features=Features({"input_ids": List(Value("int32")), "labels": List(Value("int32"))}),
        )

    try:
        return run(nproc), nproc
    except AssertionError as e:  # "daemonic processes are not allowed to have children" (some worker pools)
        if nproc == 1 or "daemonic" not in str(e):
            raise
        log.warning("cannot start tokenizer worker processes here (%s): tokenizing in this process", e)
        return run(1), 1


def train_examples(rows: pd.DataFrame | str | Path, tokenizer, template: PromptTemplate, max_len: int, *,
                   cache_dir: str | Path, max_rows: int | None = None, num_proc: int | None = None,
                   window_rows: int | None = None):
    """The training examples of ``rows`` (a frame, or the path of a Parquet file such as a snapshot's
    ``train.parquet``) as a memory-mapped ``datasets.Dataset`` with ``input_ids`` and ``labels``, in the canonical
    order (a frame: its order)."""
    cache_dir = Path(cache_dir)
    ds, positions = rows_dataset(rows, cache_dir, max_rows)
    examples = tokenize_dataset(ds, tokenizer, template, max_len, cache_dir, num_proc, window_rows)
    return examples if positions is None else examples.select(positions)


def iter_examples(examples, batch_rows: int = BATCH_ROWS) -> Iterator[dict]:
    """Each example as a dict of lists, read from a ``datasets.Dataset`` a batch at a time (or a list as is)."""
    if isinstance(examples, list):
        yield from examples
        return
    for batch in examples.iter(batch_size=batch_rows):
        for ids, labels in zip(batch["input_ids"], batch["labels"], strict=True):
            yield {"input_ids": ids, "labels": labels}


def lengths(examples) -> list[int]:
    """Each example's token count, in the dataset's order."""
    if isinstance(examples, list):
        return [len(e["input_ids"]) for e in examples]
    import pyarrow.compute as pc

    if not len(examples):
        return []
    counts = pc.list_value_length(examples.data.column("input_ids"))  # from the list offsets: no token is read
    indices = examples._indices  # a select()'s row mapping over the table, if any
    return (counts if indices is None else counts.take(indices.column(0))).to_pylist()


def completion_tokens(examples) -> int:
    """Tokens the loss is computed on (labels that are not -100)."""
    if isinstance(examples, list):
        return sum(sum(1 for t in e["labels"] if t != IGNORE) for e in examples)
    import pyarrow.compute as pc

    if not len(examples):
        return 0
    if examples._indices is not None and len(examples) != examples.data.num_rows:  # a subset of the table
        return completion_tokens(list(iter_examples(examples)))
    flat = pc.list_flatten(examples.data.column("labels"))  # every row of the table once, in any order
    return int(pc.sum(pc.not_equal(flat, IGNORE)).as_py() or 0)
