"""Versioned, immutable dataset snapshots: content-addressed, written atomically, with a lineage manifest.

Layout: ``<LLMOPS_HOME>/snapshots/<use_case>/<snapshot_id>/{train,eval}.parquet, {train,eval}.jsonl,
manifest.json``. The id is a hash of the rows and the split rule, so the same content gives the same id and a
re-run writes nothing new.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from llmops import paths
from llmops.config import SplitConfig
from llmops.errors import SnapshotNotFound
from llmops.version import code_version

log = logging.getLogger(__name__)

CONTENT_COLUMNS = ["prompt", "response"]
SPLIT_RULE = "eval if sha256(seed:prompt) / 2**64 < eval_fraction"


def split_of(prompt: str, split: SplitConfig) -> str:
    """Stable split: decided by a hash of the row's key, so a row never moves when new data arrives."""
    h = int.from_bytes(hashlib.sha256(f"{split.seed}:{prompt}".encode()).digest()[:8], "big")
    return "eval" if h / 2**64 < split.eval_fraction else "train"


def content_id(train: pd.DataFrame, eval_: pd.DataFrame, split: SplitConfig) -> str:
    h = hashlib.sha256()
    h.update(json.dumps({"rule": SPLIT_RULE, **split.model_dump()}, sort_keys=True).encode())
    for name, df in (("train", train), ("eval", eval_)):
        h.update(f"\n#{name}\n".encode())
        cols = [c for c in CONTENT_COLUMNS + ["timestamp"] if c in df.columns]
        for row in df[cols].astype(str).itertuples(index=False):
            h.update(json.dumps(list(row), ensure_ascii=False).encode())
            h.update(b"\n")
    return h.hexdigest()[:16]


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    keys = ["prompt", "response"]
    return df.sort_values(keys, kind="stable").reset_index(drop=True)


def write_snapshot(
    df: pd.DataFrame,
    *,
    use_case: str,
    split: SplitConfig,
    source: dict,
    validation: dict,
    interval: dict | None = None,
    root: Path | None = None,
) -> dict:
    """Split, hash and write a snapshot; return its manifest. Idempotent: existing ids are not rewritten."""
    root = root or paths.snapshots_root(use_case)
    which = df["prompt"].map(lambda p: split_of(p, split))
    train, eval_ = _sorted(df[which == "train"]), _sorted(df[which == "eval"])
    sid = content_id(train, eval_, split)
    final = root / sid
    if (final / "manifest.json").exists():
        log.info("snapshot %s already exists at %s; nothing written", sid, final)
        return read_manifest(use_case, sid, root=root)

    manifest = {
        "snapshot_id": sid,
        "use_case": use_case,
        "uri": final.as_uri(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": source,
        "interval": interval,
        "rows": {"input": int(len(df)), "train": int(len(train)), "eval": int(len(eval_))},
        "columns": {c: str(t) for c, t in df.dtypes.items()},
        "split": {"rule": SPLIT_RULE, **split.model_dump()},
        "validation": validation,
        "code_version": code_version(),
    }
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{sid}.", dir=root))
    try:
        for name, part in (("train", train), ("eval", eval_)):
            part.to_parquet(tmp / f"{name}.parquet", index=False)
            part.to_json(tmp / f"{name}.jsonl", orient="records", lines=True, date_format="iso", force_ascii=False)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / "manifest.json").exists():
                raise
            log.info("snapshot %s was written concurrently; keeping the existing one", sid)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("wrote snapshot %s: %d train / %d eval rows at %s", sid, len(train), len(eval_), final)
    return manifest


def read_manifest(use_case: str, snapshot_id: str, root: Path | None = None) -> dict:
    path = (root or paths.snapshots_root(use_case)) / snapshot_id / "manifest.json"
    if not path.exists():
        raise SnapshotNotFound(f"use case '{use_case}' has no snapshot '{snapshot_id}' (looked in {path.parent})")
    return json.loads(path.read_text())


def list_snapshots(use_case: str, root: Path | None = None) -> list[dict]:
    """Manifests of every complete snapshot, oldest first."""
    root = root or paths.snapshots_root(use_case)
    if not root.exists():
        return []
    found = [json.loads(p.read_text()) for p in root.glob("*/manifest.json") if not p.parent.name.startswith(".")]
    return sorted(found, key=lambda m: (m["created_at"], m["snapshot_id"]))


def latest_snapshot_id(use_case: str) -> str:
    found = list_snapshots(use_case)
    if not found:
        raise SnapshotNotFound(f"use case '{use_case}' has no snapshot yet: run the '{use_case}__dataset' DAG first")
    return found[-1]["snapshot_id"]


def load_split(use_case: str, snapshot_id: str, split: str) -> pd.DataFrame:
    read_manifest(use_case, snapshot_id)  # raises a clear error if missing
    return pd.read_parquet(paths.snapshots_root(use_case) / snapshot_id / f"{split}.parquet")


def choose_snapshot(use_case: str, pinned: str | None, event_extras: list[dict]) -> tuple[str, str]:
    """Which snapshot a fine-tuning run uses, and why: a pinned id, else the triggering asset event's, else the
    newest one. Raises :class:`SnapshotNotFound` when the choice does not exist."""
    if pinned:
        read_manifest(use_case, pinned)
        return pinned, "pinned by the snapshot_id param"
    for extra in reversed(event_extras):
        if extra.get("snapshot_id"):
            read_manifest(use_case, extra["snapshot_id"])
            return extra["snapshot_id"], "named by the triggering dataset asset event"
    return latest_snapshot_id(use_case), "newest snapshot (no pin, no triggering event)"
