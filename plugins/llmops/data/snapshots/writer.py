"""Writing a snapshot: split by a hash of each row's key, content-addressed, published atomically, with a lineage
manifest and a dataset card.

Layout: ``<store>/<snapshot_id>/{train,eval}.parquet, {train,eval}.jsonl, manifest.json, README.md``. The README is a
Hugging Face dataset card derived from the manifest, so every snapshot folder is a dataset ``datasets.load_dataset``
opens. The id is a hash of the rows (in any order) and the split rule, so the same content gives the same id and a
re-run writes nothing new. Rows stream through in batches: memory does not grow with the rows. Callers write through
:class:`llmops.data.snapshots.handle.Snapshots`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import tempfile
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from llmops.config import SplitConfig
from llmops.data.batches import ParquetSink, SeenHashes, hash64, iter_parquet, row_hash, text_values
from llmops.data.snapshots import dataset_card
from llmops.data.snapshots.jsonl import write_jsonl
from llmops.version import code_version

log = logging.getLogger(__name__)

CONTENT_COLUMNS = ["prompt", "response"]
SPLIT_RULE = "eval if sha256(seed:key) / 2**64 < eval_fraction; key = source.key_column, else the prompt"


def split_of(key: str, split: SplitConfig) -> str:
    """Stable split: decided by a hash of the row's key, so a row never moves when new data arrives."""
    h = int.from_bytes(hashlib.sha256(f"{split.seed}:{key}".encode()).digest()[:8], "big")
    return "eval" if h / 2**64 < split.eval_fraction else "train"


def is_eval_hash(hashes: np.ndarray, split: SplitConfig) -> np.ndarray:
    """:func:`split_of` == "eval" for keys already hashed with ``hash64(keys, f"{seed}:")``."""
    limit = math.ceil(split.eval_fraction * 2**64)  # h < fraction * 2**64 exactly, for integer h
    if limit >= 2**64:
        return np.ones(len(hashes), dtype=bool)
    return hashes < np.uint64(limit)


class ContentDigest:
    """The snapshot id: a hash of the split rule and of the multiset of rows in each split (the sums of 128-bit
    row hashes of the content columns), so the same rows in any order, in any batches, give the same id."""

    def __init__(self, split: SplitConfig, content_columns: list[str] | None = None):
        self.split = split
        self.content_columns = content_columns or CONTENT_COLUMNS
        self.rows = {"train": 0, "eval": 0}
        self.sums = {"train": np.zeros(2, dtype=np.uint64), "eval": np.zeros(2, dtype=np.uint64)}
        self.columns: list[str] = []

    def update(self, name: str, df: pd.DataFrame) -> None:
        if not len(df):
            return
        self.columns = [c for c in self.content_columns + ["timestamp"] if c in df.columns]
        with np.errstate(over="ignore"):
            self.sums[name] += row_hash(df, self.columns, lanes=2).sum(axis=0, dtype=np.uint64)
        self.rows[name] += len(df)

    def hexdigest(self) -> str:
        h = hashlib.sha256()
        h.update(json.dumps({"rule": SPLIT_RULE, **self.split.model_dump(), "columns": self.columns},
                            sort_keys=True).encode())
        for name in ("train", "eval"):
            h.update(f"\n#{name}:{self.rows[name]}:{self.sums[name][0]}:{self.sums[name][1]}".encode())
        return h.hexdigest()[:16]


def _write_part(df: pd.DataFrame, sink: ParquetSink, jsonl, digest: ContentDigest, name: str) -> None:
    if len(df):
        sink.write(df)
        write_jsonl(df, jsonl)
        digest.update(name, df)


def write_batches(
    store,
    batches: Iterable[pd.DataFrame],
    *,
    split: SplitConfig,
    source: dict,
    validation: dict,
    parents: list[str] | Callable[[], list[str]],
    interval: dict | None = None,
    steps: list[dict] | None = None,
    partition_key: str | None = None,
    report_dir: Path | None = None,
    content_columns: list[str] | None = None,
    split_column: str | None = None,
) -> dict:
    """Split, hash and write a snapshot into ``store`` batch by batch; return its manifest. Idempotent: when the
    content id already exists, nothing is written (the new copy is discarded before it becomes visible).

    Train rows stream to ``train.parquet``/``train.jsonl``; eval rows wait in a temporary file until every
    train prompt is known, then those that also appear in train are dropped (the leakage check) and the rest
    written. ``steps`` are the preparation steps' row counts; ``parents`` the snapshots this one derives from, or
    a function giving them (asked only when the snapshot is new); ``report_dir`` a folder (e.g. the validation
    report) copied in as ``reports/``; ``content_columns`` the columns the id hashes (default prompt, response);
    ``split_column`` the column whose hash decides the split (default ``key`` when there is one, else ``prompt``:
    preference rows split by prompt, so one prompt's pairs are all on one side)."""
    tmp = Path(tempfile.mkdtemp(prefix=".tmp.", dir=store.scratch()))
    try:
        digest = ContentDigest(split, content_columns)
        train_prompts = SeenHashes()
        salt = f"{split.seed}:"
        rows_in, empty_like, columns = 0, None, {}
        train_sink, pending = ParquetSink(tmp / "train.parquet"), ParquetSink(tmp / ".eval-pending.parquet")
        with open(tmp / "train.jsonl", "wb") as train_jsonl:
            for df in batches:
                if not len(df):
                    continue
                df = df.reset_index(drop=True)
                rows_in += len(df)
                empty_like = df.iloc[:0]
                columns = {c: str(t) for c, t in df.dtypes.items()}
                by = split_column or ("key" if "key" in df.columns else "prompt")
                key_hash = hash64(text_values(df[by]), salt)
                to_eval = is_eval_hash(key_hash, split)
                train = df[~to_eval]
                prompt_hash = key_hash if by == "prompt" else hash64(text_values(df["prompt"]), salt)
                train_prompts.add(prompt_hash[~to_eval])
                _write_part(train, train_sink, train_jsonl, digest, "train")
                if to_eval.any():
                    pending.write(df[to_eval])
                log.info("snapshot: %d rows so far (%d train)", rows_in, train_sink.rows)
        train_sink.close(empty_like)
        pending.close(empty_like)
        leaked, eval_sink = 0, ParquetSink(tmp / "eval.parquet")
        with open(tmp / "eval.jsonl", "wb") as eval_jsonl:
            if pending.rows:
                for ev in iter_parquet(pending.path):
                    hit = train_prompts.contains(hash64(text_values(ev["prompt"]), salt))
                    leaked += int(hit.sum())
                    _write_part(ev[~hit], eval_sink, eval_jsonl, digest, "eval")
        eval_sink.close(empty_like)
        (tmp / ".eval-pending.parquet").unlink()
        if leaked:
            log.warning("leakage: %d eval prompt(s) also appear in train; dropped from eval", leaked)
        leakage = {"step": "leakage_check", "rows_in": int(pending.rows), "rows_out": int(pending.rows - leaked),
                   "eval_prompts_in_train": leaked}

        sid = digest.hexdigest()
        existing_manifest = store.manifest(sid)
        if existing_manifest is not None:
            log.info("snapshot %s already exists at %s; nothing written", sid, store.where(sid))
            return existing_manifest
        if callable(parents):
            parents = parents()
        manifest = {
            "snapshot_id": sid,
            "use_case": store.use_case,
            "uri": store.uri(sid),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": source,
            "interval": interval,
            "partition_key": partition_key,
            "rows": {"input": int(rows_in), "train": int(digest.rows["train"]), "eval": int(digest.rows["eval"])},
            "steps": [*(steps or []), leakage],
            "columns": columns,
            "split": {"rule": SPLIT_RULE, **split.model_dump()},
            "validation": validation,
            "parents": parents,
            "code_version": code_version(),
        }
        if report_dir and Path(report_dir).is_dir():
            shutil.copytree(report_dir, tmp / "reports")
            manifest["validation"] = {**validation, "report": f"{store.uri(sid)}/reports/index.html"}
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        sizes = {name: (tmp / f"{name}.parquet").stat().st_size for name in ("train", "eval")}
        (tmp / dataset_card.CARD).write_text(dataset_card.render(manifest, sizes), encoding="utf-8")
        if not store.publish(tmp, sid):
            log.info("snapshot %s was written concurrently; keeping the existing one", sid)
            return store.manifest(sid)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote snapshot %s: %d train / %d eval rows at %s", sid, manifest["rows"]["train"],
             manifest["rows"]["eval"], store.where(sid))
    return manifest
