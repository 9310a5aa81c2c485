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
SPLIT_RULE = "eval if sha256(seed:key) / 2**64 < eval_fraction; key = source.key_column, else the prompt"


def split_of(key: str, split: SplitConfig) -> str:
    """Stable split: decided by a hash of the row's key, so a row never moves when new data arrives."""
    h = int.from_bytes(hashlib.sha256(f"{split.seed}:{key}".encode()).digest()[:8], "big")
    return "eval" if h / 2**64 < split.eval_fraction else "train"


def is_eval(keys, split: SplitConfig) -> list[bool]:
    limit = split.eval_fraction * 2**64
    prefix = f"{split.seed}:"
    sha = hashlib.sha256
    return [int.from_bytes(sha((prefix + k).encode()).digest()[:8], "big") < limit for k in keys]


def content_id(train: pd.DataFrame, eval_: pd.DataFrame, split: SplitConfig) -> str:
    """A hash of the split rule and of every content column, column by column (lengths, then the text)."""
    h = hashlib.sha256()
    h.update(json.dumps({"rule": SPLIT_RULE, **split.model_dump()}, sort_keys=True).encode())
    for name, df in (("train", train), ("eval", eval_)):
        h.update(f"\n#{name}:{len(df)}\n".encode())
        for col in [c for c in CONTENT_COLUMNS + ["timestamp"] if c in df.columns]:
            text = df[col].astype(str)
            h.update(f"#{col}\n".encode())
            h.update(text.str.len().to_numpy(dtype="int64").tobytes())
            h.update("\x1f".join(text.tolist()).encode("utf-8", "surrogatepass"))
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
    steps: list[dict] | None = None,
    partition_key: str | None = None,
    parents: list[str] | None = None,
    report_dir: Path | None = None,
) -> dict:
    """Split, hash and write a snapshot; return its manifest. Idempotent: existing ids are not rewritten.

    ``steps`` are the preparation steps' row counts; ``parents`` the snapshots this one derives from (default:
    the newest existing one); ``report_dir`` a folder (e.g. the validation report) copied in as ``reports/``."""
    from llmops.data.prepare import drop_leakage

    root = root or paths.snapshots_root(use_case)
    keys = (df["key"] if "key" in df.columns else df["prompt"]).astype(str).tolist()
    to_eval = pd.Series(is_eval(keys, split), index=df.index)
    train, eval_ = df[~to_eval], df[to_eval]
    eval_, leakage = drop_leakage(train, eval_)
    train, eval_ = _sorted(train), _sorted(eval_)
    sid = content_id(train, eval_, split)
    final = root / sid
    if (final / "manifest.json").exists():
        log.info("snapshot %s already exists at %s; nothing written", sid, final)
        return read_manifest(use_case, sid, root=root)
    if parents is None:
        existing = list_snapshots(use_case, root=root)
        parents = [existing[-1]["snapshot_id"]] if existing else []

    manifest = {
        "snapshot_id": sid,
        "use_case": use_case,
        "uri": final.as_uri(),
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "source": source,
        "interval": interval,
        "partition_key": partition_key,
        "rows": {"input": int(len(df)), "train": int(len(train)), "eval": int(len(eval_))},
        "steps": [*(steps or []), leakage],
        "columns": {c: str(t) for c, t in df.dtypes.items()},
        "split": {"rule": SPLIT_RULE, **split.model_dump()},
        "validation": validation,
        "parents": parents,
        "code_version": code_version(),
    }
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{sid}.", dir=root))
    try:
        for name, part in (("train", train), ("eval", eval_)):
            part.to_parquet(tmp / f"{name}.parquet", index=False)
            part.to_json(tmp / f"{name}.jsonl", orient="records", lines=True, date_format="iso", force_ascii=False)
        if report_dir and Path(report_dir).is_dir():
            shutil.copytree(report_dir, tmp / "reports")
            manifest["validation"] = {**validation, "report": (final / "reports" / "index.html").as_uri()}
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


def _order(m: dict) -> tuple:
    return ((m.get("interval") or {}).get("start") or m.get("partition_key") or "", m["created_at"], m["snapshot_id"])


def union_snapshot(use_case: str, ids: list[str], split: SplitConfig) -> dict:
    """One snapshot holding the rows of several (exact duplicates dropped); its parents are those snapshots.

    Rows keep their split, because the split is a hash of each row's key. Content-addressed like any other."""
    manifests = [read_manifest(use_case, i) for i in ids]
    df = pd.concat([load_split(use_case, i, part) for i in ids for part in ("train", "eval")], ignore_index=True)
    df = df.drop_duplicates(subset=CONTENT_COLUMNS)
    starts = [(m.get("interval") or {}).get("start") for m in manifests]
    ends = [(m.get("interval") or {}).get("end") for m in manifests]
    interval = {"start": min(starts), "end": max(ends)} if all(starts) and all(ends) else None
    validation = {"success": all(m["validation"].get("success", False) for m in manifests),
                  "union_of": {m["snapshot_id"]: m["validation"].get("success") for m in manifests}}
    return write_snapshot(df, use_case=use_case, split=split, source={"kind": "union", "snapshots": ids},
                          validation=validation, interval=interval, parents=ids)


def _settings(use_case: str):
    from llmops.config import SnapshotConfig, load_by_name
    from llmops.errors import ConfigError

    try:
        cfg = load_by_name(use_case)
        return cfg.snapshots, cfg.split
    except ConfigError:
        return SnapshotConfig(), SplitConfig()


def choose_snapshot(use_case: str, pinned: str | None, event_extras: list[dict], *, settings=None,
                    split: SplitConfig | None = None) -> tuple[str, str]:
    """Which snapshot a fine-tuning run uses, and why: a pinned id, else the triggering asset event's, else the
    newest one. With ``snapshots.train_on: last_n`` (and no pin) the run trains on the union of the newest N
    interval snapshots up to that one. Raises :class:`SnapshotNotFound` when the choice does not exist."""
    if pinned:
        read_manifest(use_case, pinned)
        return pinned, "pinned by the snapshot_id param"
    if settings is None:
        settings, split = _settings(use_case)
    chosen, why = None, ""
    for extra in reversed(event_extras):
        if extra.get("snapshot_id"):
            read_manifest(use_case, extra["snapshot_id"])
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
