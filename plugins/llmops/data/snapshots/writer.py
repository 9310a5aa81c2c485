"""Versioned, immutable dataset snapshots: content-addressed, written atomically, with a lineage manifest.

Layout: ``<LLMOPS_HOME>/snapshots/<use_case>/<snapshot_id>/{train,eval}.parquet, {train,eval}.jsonl,
manifest.json, README.md``. The README is a Hugging Face dataset card derived from the manifest, so every snapshot
folder is a dataset ``datasets.load_dataset`` opens (see :func:`dataset_folder`). The id is a hash of the rows (in any order) and the split rule, so the same content gives the
same id and a re-run writes nothing new. Rows stream through in batches: memory does not grow with the rows.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import shutil
import tempfile
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from llmops.config import SnapshotConfig, SplitConfig
from llmops.data import dataset_card
from llmops.data.batches import ParquetSink, SeenHashes, hash64, iter_parquet, row_hash, text_values
from llmops.data.jsonl import write_jsonl
from llmops.data.storage import store_for
from llmops.errors import SnapshotNotFound
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

    def __init__(self, split: SplitConfig):
        self.split = split
        self.rows = {"train": 0, "eval": 0}
        self.sums = {"train": np.zeros(2, dtype=np.uint64), "eval": np.zeros(2, dtype=np.uint64)}
        self.columns: list[str] = []

    def update(self, name: str, df: pd.DataFrame) -> None:
        if not len(df):
            return
        self.columns = [c for c in CONTENT_COLUMNS + ["timestamp"] if c in df.columns]
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


def write_snapshot(df: pd.DataFrame, **kwargs) -> dict:
    """:func:`write_snapshot_batches` for one in-memory frame."""
    return write_snapshot_batches([df], **kwargs)


def write_snapshot_file(path: Path | str, **kwargs) -> dict:
    """:func:`write_snapshot_batches` for a staged Parquet file, read batch by batch."""
    return write_snapshot_batches(iter_parquet(path), **kwargs)


def _write_part(df: pd.DataFrame, sink: ParquetSink, jsonl, digest: ContentDigest, name: str) -> None:
    if len(df):
        sink.write(df)
        write_jsonl(df, jsonl)
        digest.update(name, df)


def write_snapshot_batches(
    batches: Iterable[pd.DataFrame],
    *,
    use_case,
    split: SplitConfig,
    source: dict,
    validation: dict,
    interval: dict | None = None,
    root: Path | None = None,
    steps: list[dict] | None = None,
    partition_key: str | None = None,
    parents: list[str] | None = None,
    report_dir: Path | None = None,
) -> dict:
    """Split, hash and write a snapshot batch by batch; return its manifest. Idempotent: when the content id
    already exists, nothing is written (the new copy is discarded before it becomes visible).

    Train rows stream to ``train.parquet``/``train.jsonl``; eval rows wait in a temporary file until every
    train prompt is known, then those that also appear in train are dropped (the leakage check) and the rest
    written. ``steps`` are the preparation steps' row counts; ``parents`` the snapshots this one derives from
    (default: the newest existing one); ``report_dir`` a folder (e.g. the validation report) copied in as
    ``reports/``."""
    store = store_for(use_case, root)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp.", dir=store.scratch()))
    try:
        digest = ContentDigest(split)
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
                key_hash = hash64(text_values(df["key"] if "key" in df.columns else df["prompt"]), salt)
                to_eval = is_eval_hash(key_hash, split)
                train = df[~to_eval]
                prompt_hash = key_hash if "key" not in df.columns else hash64(text_values(df["prompt"]), salt)
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
        if parents is None:
            existing = list_snapshots(use_case, root=root)
            parents = [existing[-1]["snapshot_id"]] if existing else []
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


def read_manifest(use_case, snapshot_id: str, root: Path | str | None = None) -> dict:
    """``use_case``: the use case's config, its store, or a bare name (the default local store)."""
    from llmops import names

    snapshot_id = names.snapshot_id(snapshot_id)  # before any path or object name is built from it
    store = store_for(use_case, root)
    manifest = store.manifest(snapshot_id)
    if manifest is None:
        raise SnapshotNotFound(f"use case '{store.use_case}' has no snapshot '{snapshot_id}' "
                               f"(looked in {store.where(snapshot_id)})")
    return manifest


def list_snapshots(use_case, root: Path | str | None = None) -> list[dict]:
    """Manifests of every complete snapshot, oldest first."""
    return sorted(store_for(use_case, root).manifests(), key=lambda m: (m["created_at"], m["snapshot_id"]))


def latest_snapshot_id(use_case) -> str:
    store = store_for(use_case)
    found = list_snapshots(store)
    if not found:
        raise SnapshotNotFound(f"use case '{store.use_case}' has no snapshot yet: run the "
                               f"'{store.use_case}__dataset' DAG first")
    return found[-1]["snapshot_id"]


def split_path(use_case, snapshot_id: str, split: str) -> Path:
    """A local path of one split's Parquet file (a GCS snapshot is downloaded once into the cache)."""
    store = store_for(use_case)
    read_manifest(store, snapshot_id)  # raises a clear error if missing
    return store.local_dir(snapshot_id) / f"{split}.parquet"


def dataset_folder(use_case, snapshot_id: str) -> Path:
    """The local folder of a snapshot, to give ``datasets.load_dataset``: the snapshot itself in a local store, the
    downloaded copy of a GCS one. ``load_dataset(str(dataset_folder(cfg, sid)))`` gives its ``train`` and ``eval``
    splits, as its ``README.md`` card declares them."""
    store = store_for(use_case)
    read_manifest(store, snapshot_id)  # raises a clear error if missing
    return store.local_dir(snapshot_id)


def load_split(use_case, snapshot_id: str, split: str) -> pd.DataFrame:
    """One split in its canonical order (by prompt, then response): the id does not depend on the order rows
    arrived in, so neither may what training and evaluation see."""
    df = pd.read_parquet(split_path(use_case, snapshot_id, split))
    return df.sort_values(CONTENT_COLUMNS, kind="stable").reset_index(drop=True)


def _order(m: dict) -> tuple:
    return ((m.get("interval") or {}).get("start") or m.get("partition_key") or "", m["created_at"], m["snapshot_id"])


def union_snapshot(use_case, ids: list[str], split: SplitConfig) -> dict:
    """One snapshot holding the rows of several (exact duplicates dropped); its parents are those snapshots.

    Rows keep their split, because the split is a hash of each row's key. Content-addressed like any other."""
    use_case = store_for(use_case)
    manifests = [read_manifest(use_case, i) for i in ids]
    seen = SeenHashes()

    def batches():
        for i in ids:
            for part in ("train", "eval"):
                for df in iter_parquet(split_path(use_case, i, part)):
                    yield df[seen.first_seen(row_hash(df, CONTENT_COLUMNS))]
    starts = [(m.get("interval") or {}).get("start") for m in manifests]
    ends = [(m.get("interval") or {}).get("end") for m in manifests]
    interval = {"start": min(starts), "end": max(ends)} if all(starts) and all(ends) else None
    validation = {"success": all(m["validation"].get("success", False) for m in manifests),
                  "union_of": {m["snapshot_id"]: m["validation"].get("success") for m in manifests}}
    return write_snapshot_batches(batches(), use_case=use_case, split=split, source={"kind": "union", "snapshots": ids},
                          validation=validation, interval=interval, parents=ids)


def choose_snapshot(use_case, pinned: str | None, event_extras: list[dict], *, settings=None,
                    split: SplitConfig | None = None) -> tuple[str, str]:
    """Which snapshot a fine-tuning run uses, and why: a pinned id, else the triggering asset event's, else the
    newest one. With ``snapshots.train_on: last_n`` (and no pin) the run trains on the union of the newest N
    interval snapshots up to that one. ``use_case``: the use case's config (its ``snapshots`` and ``split``
    settings apply), or its store / a bare name with ``settings``/``split`` given (default: train on the
    interval's snapshot). Raises :class:`SnapshotNotFound` when the choice does not exist."""
    from llmops import names

    if not isinstance(use_case, str) and hasattr(use_case, "snapshots"):
        settings, split = settings or use_case.snapshots, split or use_case.split
    settings = settings or SnapshotConfig()
    use_case = store_for(use_case)
    if pinned:
        read_manifest(use_case, names.snapshot_id(pinned))
        return pinned, "pinned by the snapshot_id param"
    chosen, why = None, ""
    for extra in reversed(event_extras):
        if extra.get("snapshot_id"):
            read_manifest(use_case, names.snapshot_id(extra["snapshot_id"], "asset event extra.snapshot_id"))
            chosen, why = extra["snapshot_id"], "named by the triggering dataset asset event"
            break
    if chosen is None:
        chosen, why = latest_snapshot_id(use_case), "newest snapshot (no pin, no triggering event)"
    if settings.train_on != "last_n":
        return chosen, why
    anchor = read_manifest(use_case, chosen)
    candidates = sorted((m for m in list_snapshots(use_case) if m["source"].get("kind") != "union"
                         and _order(m) <= _order(anchor)), key=_order)
    window = [m["snapshot_id"] for m in candidates[-settings.last_n:]] or [chosen]
    if len(window) == 1:
        return window[0], f"{why}; last {settings.last_n} = just this one"
    union = union_snapshot(use_case, window, split or SplitConfig())
    return union["snapshot_id"], f"union of the last {len(window)} snapshots {window} ({why})"
