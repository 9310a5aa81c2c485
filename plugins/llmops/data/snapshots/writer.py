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
from llmops.data.snapshots.kinds import DATASET, SnapshotKind
from llmops.version import code_version

log = logging.getLogger(__name__)

CONTENT_COLUMNS = list(DATASET.content_columns)
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


class _Build:
    """One snapshot being built in ``tmp``: train rows stream to ``train.parquet``/``train.jsonl`` as they come,
    eval rows wait in ``.eval-pending.parquet`` until every train prompt is known (:meth:`finish_eval`)."""

    def __init__(self, tmp: Path, split: SplitConfig, kind: SnapshotKind):
        self.tmp, self.split, self.kind = tmp, split, kind
        self.salt = f"{split.seed}:"
        self.digest = ContentDigest(split, list(kind.content_columns))
        self.train_prompts = SeenHashes()
        self.rows_in, self.empty_like, self.columns = 0, None, {}
        self.train = ParquetSink(tmp / "train.parquet")
        self.pending = ParquetSink(tmp / ".eval-pending.parquet")

    def add_all(self, batches: Iterable[pd.DataFrame]) -> None:
        with open(self.tmp / "train.jsonl", "wb") as train_jsonl:
            for df in batches:
                if len(df):
                    self._add(df.reset_index(drop=True), train_jsonl)
        self.train.close(self.empty_like)
        self.pending.close(self.empty_like)

    def _add(self, df: pd.DataFrame, train_jsonl) -> None:
        self.rows_in += len(df)
        self.empty_like = df.iloc[:0]
        self.columns = {c: str(t) for c, t in df.dtypes.items()}
        by = self.kind.split_column or ("key" if "key" in df.columns else "prompt")
        key_hash = hash64(text_values(df[by]), self.salt)
        to_eval = is_eval_hash(key_hash, self.split)
        prompt_hash = key_hash if by == "prompt" else hash64(text_values(df["prompt"]), self.salt)
        self.train_prompts.add(prompt_hash[~to_eval])
        _write_part(df[~to_eval], self.train, train_jsonl, self.digest, "train")
        if to_eval.any():
            self.pending.write(df[to_eval])
        log.info("snapshot: %d rows so far (%d train)", self.rows_in, self.train.rows)

    def finish_eval(self) -> dict:
        """Write the eval split without the rows whose prompt is also in train (the leakage check); its step."""
        leaked, eval_sink = 0, ParquetSink(self.tmp / "eval.parquet")
        with open(self.tmp / "eval.jsonl", "wb") as eval_jsonl:
            if self.pending.rows:
                for ev in iter_parquet(self.pending.path):
                    hit = self.train_prompts.contains(hash64(text_values(ev["prompt"]), self.salt))
                    leaked += int(hit.sum())
                    _write_part(ev[~hit], eval_sink, eval_jsonl, self.digest, "eval")
        eval_sink.close(self.empty_like)
        self.pending.path.unlink()
        if leaked:
            log.warning("leakage: %d eval prompt(s) also appear in train; dropped from eval", leaked)
        return {"step": "leakage_check", "rows_in": int(self.pending.rows),
                "rows_out": int(self.pending.rows - leaked), "eval_prompts_in_train": leaked}

    def manifest(self, store, sid: str, *, parents: list[str], steps: list[dict], **lineage) -> dict:
        """The manifest of the new snapshot ``sid``: ``lineage`` holds its source, validation, interval and
        partition key, as given."""
        rows = self.digest.rows
        return {
            "snapshot_id": sid,
            "use_case": store.use_case,
            "uri": store.uri(sid),
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "source": lineage["source"],
            "interval": lineage["interval"],
            "partition_key": lineage["partition_key"],
            "rows": {"input": int(self.rows_in), "train": int(rows["train"]), "eval": int(rows["eval"])},
            "steps": steps,
            "columns": self.columns,
            "split": {"rule": SPLIT_RULE, **self.split.model_dump()},
            "validation": lineage["validation"],
            "parents": parents,
            "code_version": code_version(),
            **self.kind.manifest_fields(),
        }

    def finish(self, manifest: dict, report_dir: Path | None) -> None:
        """The manifest, the copied reports and the dataset card, beside the splits."""
        if report_dir and Path(report_dir).is_dir():
            shutil.copytree(report_dir, self.tmp / "reports")
            manifest["validation"] = {**manifest["validation"], "report": f"{manifest['uri']}/reports/index.html"}
        (self.tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        sizes = {name: (self.tmp / f"{name}.parquet").stat().st_size for name in ("train", "eval")}
        (self.tmp / dataset_card.CARD).write_text(dataset_card.render(manifest, sizes), encoding="utf-8")


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
    kind: SnapshotKind = DATASET,
) -> dict:
    """Split, hash and write a snapshot into ``store`` batch by batch; return its manifest. Idempotent: when the
    content id already exists, nothing is written (the new copy is discarded before it becomes visible).

    Train rows stream to ``train.parquet``/``train.jsonl``; eval rows wait in a temporary file until every
    train prompt is known, then those that also appear in train are dropped (the leakage check) and the rest
    written. ``steps`` are the preparation steps' row counts; ``parents`` the snapshots this one derives from, or
    a function giving them (asked only when the snapshot is new); ``report_dir`` a folder (e.g. the validation
    report) copied in as ``reports/``; ``kind`` what the rows are (:mod:`llmops.data.snapshots.kinds`): the
    columns the id hashes and the column whose hash decides the split."""
    tmp = Path(tempfile.mkdtemp(prefix=".tmp.", dir=store.scratch()))
    try:
        build = _Build(tmp, split, kind)
        build.add_all(batches)
        leakage = build.finish_eval()
        sid = build.digest.hexdigest()
        existing_manifest = store.manifest(sid)
        if existing_manifest is not None:
            log.info("snapshot %s already exists at %s; nothing written", sid, store.where(sid))
            return existing_manifest
        manifest = build.manifest(store, sid, parents=parents() if callable(parents) else parents,
                                  steps=[*(steps or []), leakage], source=source, validation=validation,
                                  interval=interval, partition_key=partition_key)
        build.finish(manifest, report_dir)
        if not store.publish(tmp, sid):
            log.info("snapshot %s was written concurrently; keeping the existing one", sid)
            return store.manifest(sid)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote snapshot %s: %d train / %d eval rows at %s", sid, manifest["rows"]["train"],
             manifest["rows"]["eval"], store.where(sid))
    return manifest
