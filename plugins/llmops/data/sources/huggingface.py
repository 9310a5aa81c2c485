"""Hugging Face dataset source: ``datasets.load_dataset(dataset, name, split=split, revision=revision)``, streamed
into the pipeline in batches.

``dataset`` is a Hub id pinned to a ``revision`` or a local dataset folder (Parquet/JSON/CSV files, optionally
with a README.md card naming its configs and splits; a path checked against ``source.allowed_roots`` first). The
split is prepared once into Arrow files under ``${LLMOPS_HOME}/cache/huggingface`` and memory-mapped, then read
a batch of rows at a time, columns mapped and rows filtered to the interval exactly as for files.

The lineage records the revision read: for a Hub dataset the commit sha its files were resolved at (when the
download records it, else the pinned revision); for a local folder a content hash of its files, so a changed
folder is visible in the manifest.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pandas as pd

from llmops import paths
from llmops.config import SourceConfig, is_local_dataset
from llmops.data.sources.files import check_local_path
from llmops.data.sources.rows import in_interval, map_columns
from llmops.errors import DataError

log = logging.getLogger(__name__)
_COMMIT = re.compile(r"@([0-9a-f]{40})/")


def folder_hash(folder: Path) -> str:
    """sha256 of every file under ``folder`` (relative path and content), hidden files and folders left out."""
    h = hashlib.sha256()
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if not p.is_file() or any(part.startswith(".") for part in rel.parts):
            continue
        h.update(f"{rel.as_posix()}\0".encode())
        with open(p, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        h.update(b"\0")
    return "sha256:" + h.hexdigest()


def hub_commit(ds, pinned: str) -> str:
    """The commit sha a Hub dataset's files were resolved at (``hf://datasets/<id>@<sha>/...``), else ``pinned``."""
    if re.fullmatch(r"[0-9a-f]{40}", pinned):
        return pinned
    for url in (ds.info.download_checksums or {}):
        if m := _COMMIT.search(str(url)):
            return m.group(1)
    return pinned


def load(source: SourceConfig):
    """The split as a memory-mapped ``datasets.Dataset``, and the lineage of the read."""
    import datasets

    local = is_local_dataset(source.dataset)
    target = str(check_local_path(source.dataset, source.allowed_roots)) if local else source.dataset
    if local and not Path(target).is_dir():
        raise DataError(f"source.dataset: '{source.dataset}' is not a folder (looked for {target})")
    cache = paths.llmops_home() / "cache" / "huggingface"
    try:
        ds = datasets.load_dataset(target, source.name, split=source.split,
                                   revision=None if local else source.revision, cache_dir=str(cache))
    except (ValueError, FileNotFoundError, datasets.exceptions.DatasetNotFoundError) as e:
        raise DataError(f"source.dataset: '{source.dataset}' (split '{source.split}'"
                        f"{', config ' + repr(source.name) if source.name else ''}) cannot be loaded: {e}") from None
    lineage = {"kind": "huggingface", "dataset": source.dataset, "name": source.name, "split": source.split,
               "revision": source.revision, "rows_in_split": ds.num_rows}
    if local:
        lineage.update(path=target, resolved_revision=folder_hash(Path(target)), files=[target])
    else:
        lineage.update(resolved_revision=hub_commit(ds, source.revision),
                       files=[f"hf://datasets/{source.dataset}@{source.revision}"])
    return ds, lineage


def where(source: SourceConfig, lineage: dict) -> str:
    """How errors and ``source_file`` name the split: ``<folder or hf://datasets/id@rev>[/<config>]/<split>``."""
    base = lineage.get("path") or lineage["files"][0]
    return "/".join(p for p in (base, source.name, source.split) if p)


def read_dataset(source: SourceConfig, interval: tuple[datetime, datetime] | None = None, batch: int = 100_000
                 ) -> tuple[Iterator[pd.DataFrame], dict]:
    """The split's rows in batches of at most ``batch``, columns mapped and filtered to ``interval`` (with the
    row's number in the split as ``source_line``), and the lineage."""
    ds, lineage = load(source)
    name = where(source, lineage)

    def batches() -> Iterator[pd.DataFrame]:
        line, total = 1, 0
        for table in ds.with_format("arrow").iter(batch_size=batch):
            df = table.to_pandas()
            df["source_line"] = range(line, line + len(df))
            line += len(df)
            df = in_interval(map_columns(df, source, name), interval, source)
            total += len(df)
            if len(df):
                yield df
        log.info("read %d of %d rows from %s (resolved revision %s)", total, ds.num_rows, name,
                 lineage["resolved_revision"])

    return batches(), lineage
