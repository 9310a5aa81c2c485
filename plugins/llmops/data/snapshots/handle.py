"""One use case's snapshots as one handle: every read and write goes through it, over the store resolved once.

Open it where the config enters (``Snapshots.of(cfg)``: an operator, the CLI, the view, the serving app) and pass
the handle down. A published snapshot never changes, so the handle reads each manifest at most once and keeps it.
Snapshot ids are trusted here: they are checked by :func:`llmops.names.snapshot_id` where they enter (the DAG Param,
the CLI, the view, the config's ``golden_snapshot_id``, and the asset event's extra, read in :meth:`Snapshots.choose`).
The store still keeps every path it builds from an id inside its root.

A handle reads and writes one kind of snapshot (:mod:`llmops.data.snapshots.kinds`): dataset snapshots
(``Snapshots.of(cfg)``) or preference snapshots (``Snapshots.of(cfg, PREFERENCES)``). The kind decides the store's
folder, the split rule, the columns the id hashes and the order a split is read in; a snapshot of another kind
is refused, naming it.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from llmops.config import SnapshotConfig, SplitConfig
from llmops.data.batches import SeenHashes, iter_parquet, row_hash
from llmops.data.snapshots.kinds import DATASET, SnapshotKind, kind_of
from llmops.data.snapshots.store import GCSStore, LocalStore, store_for
from llmops.data.snapshots.writer import write_batches
from llmops.errors import DataError, SnapshotNotFound


def _order(m: dict) -> tuple:
    return ((m.get("interval") or {}).get("start") or m.get("partition_key") or "", m["created_at"], m["snapshot_id"])


class Snapshots:
    """The snapshots of one kind of one use case in ``store``. ``split``: the split rule new snapshots (unions
    included) are written with; ``choice``: which snapshot(s) a fine-tuning run trains on (``snapshots.train_on``,
    ``last_n``); ``kind``: what the rows are (content columns, sort key, split column)."""

    def __init__(self, store: LocalStore | GCSStore, *, split: SplitConfig | None = None,
                 choice: SnapshotConfig | None = None, kind: SnapshotKind = DATASET):
        self.store = store
        self.split = split or SplitConfig()
        self.choice = choice or SnapshotConfig()
        self.kind = kind
        self._manifests: dict[str, dict] = {}

    @classmethod
    def of(cls, cfg, kind: SnapshotKind = DATASET) -> Snapshots:
        """The handle of a use case's snapshots of ``kind``: its store (``snapshots.root``, the kind's folder), the
        kind's split rule and the training choice."""
        return cls(store_for(cfg, kind), split=kind.split_rule(cfg), choice=cfg.snapshots, kind=kind)

    @property
    def use_case(self) -> str:
        return self.store.use_case

    def uri(self, snapshot_id: str) -> str:
        return self.store.uri(snapshot_id)

    # reads

    def manifest(self, snapshot_id: str) -> dict:
        """The snapshot's manifest (read once per handle); :class:`SnapshotNotFound` when there is none, a
        :class:`DataError` naming it when it is a snapshot of another kind."""
        manifest = self._manifests.get(snapshot_id)
        if manifest is None:
            manifest = self.store.manifest(snapshot_id)
            if manifest is None:
                raise SnapshotNotFound(f"use case '{self.use_case}' has no snapshot '{snapshot_id}' (of kind "
                                       f"{self.kind.name}; looked in {self.store.where(snapshot_id)})")
            if kind_of(manifest) != self.kind.name:
                raise DataError(f"snapshot '{snapshot_id}' at {self.store.where(snapshot_id)} is a "
                                f"{kind_of(manifest)} snapshot, not a {self.kind.name} one: refused")
            self._manifests[snapshot_id] = manifest
        return manifest

    def manifests(self) -> list[dict]:
        """Manifests of every complete snapshot, oldest first."""
        return sorted((self.manifest(sid) for sid in self.store.ids()),
                      key=lambda m: (m["created_at"], m["snapshot_id"]))

    def latest_id(self) -> str:
        found = self.manifests()
        if not found:
            raise SnapshotNotFound(f"use case '{self.use_case}' has no snapshot yet: run the "
                                   f"'{self.use_case}__dataset' DAG first")
        return found[-1]["snapshot_id"]

    def dataset_folder(self, snapshot_id: str) -> Path:
        """The local folder of a snapshot, to give ``datasets.load_dataset``: the snapshot itself in a local store,
        the downloaded copy of a GCS one (downloaded once). ``load_dataset(str(handle.dataset_folder(sid)))`` gives
        its ``train`` and ``eval`` splits, as its ``README.md`` card declares them."""
        self.manifest(snapshot_id)  # a clear error if it does not exist
        return self.store.local_dir(snapshot_id)

    def split_path(self, snapshot_id: str, split: str) -> Path:
        """A local path of one split's Parquet file."""
        return self.dataset_folder(snapshot_id) / f"{split}.parquet"

    def load_split(self, snapshot_id: str, split: str) -> pd.DataFrame:
        """One split in its canonical order (the kind's sort key: by prompt, then response, for a dataset; by key
        for preferences): the id does not depend on the order rows arrived in, so neither may what training and
        evaluation see."""
        df = pd.read_parquet(self.split_path(snapshot_id, split))
        return df.sort_values(list(self.kind.sort_key), kind="stable").reset_index(drop=True)

    # writes

    def write(self, batches: Iterable[pd.DataFrame], *, source: dict, validation: dict, interval: dict | None = None,
              steps: list[dict] | None = None, partition_key: str | None = None, parents: list[str] | None = None,
              report_dir: Path | None = None) -> dict:
        """Write a snapshot of ``batches`` with this handle's split rule and kind; return its manifest (the
        existing one when the same content was written before). ``parents`` default to the newest existing
        snapshot. See :func:`llmops.data.snapshots.writer.write_batches`."""
        manifest = write_batches(
            self.store, batches, split=self.split, source=source, validation=validation, interval=interval,
            steps=steps, partition_key=partition_key, report_dir=report_dir, kind=self.kind,
            parents=parents if parents is not None else self._newest_as_parent)
        self._manifests[manifest["snapshot_id"]] = manifest
        return manifest

    def write_file(self, path: Path | str, **kwargs) -> dict:
        """:meth:`write` for a staged Parquet file, read batch by batch."""
        return self.write(iter_parquet(path), **kwargs)

    def write_frame(self, df: pd.DataFrame, **kwargs) -> dict:
        """:meth:`write` for one in-memory frame."""
        return self.write([df], **kwargs)

    def _newest_as_parent(self) -> list[str]:
        found = self.manifests()
        return [found[-1]["snapshot_id"]] if found else []

    def union(self, ids: list[str]) -> dict:
        """One snapshot holding the rows of several (exact duplicates dropped); its parents are those snapshots.

        Rows keep their split, because the split is a hash of each row's key. Content-addressed like any other."""
        manifests = [self.manifest(i) for i in ids]
        seen = SeenHashes()

        def batches():
            for i in ids:
                for part in ("train", "eval"):
                    for df in iter_parquet(self.split_path(i, part)):
                        yield df[seen.first_seen(row_hash(df, list(self.kind.content_columns)))]
        starts = [(m.get("interval") or {}).get("start") for m in manifests]
        ends = [(m.get("interval") or {}).get("end") for m in manifests]
        interval = {"start": min(starts), "end": max(ends)} if all(starts) and all(ends) else None
        validation = {"success": all(m["validation"].get("success", False) for m in manifests),
                      "union_of": {m["snapshot_id"]: m["validation"].get("success") for m in manifests}}
        return self.write(batches(), source={"kind": "union", "snapshots": ids}, validation=validation,
                          interval=interval, parents=ids)

    # which snapshot a run trains on

    def choose(self, pinned: str | None, event_extras: list[dict]) -> tuple[str, str]:
        """Which snapshot a fine-tuning run uses, and why: a pinned id (checked by its caller, where the Param
        enters), else the triggering asset event's (checked here), else the newest one. With
        ``snapshots.train_on: last_n`` (and no pin) the run trains on the union of the newest N interval snapshots
        up to that one. Raises :class:`SnapshotNotFound` when the choice does not exist."""
        from llmops import names

        if pinned:
            self.manifest(pinned)
            return pinned, "pinned by the snapshot_id param"
        chosen, why = None, ""
        for extra in reversed(event_extras):
            if extra.get("snapshot_id"):
                chosen = names.snapshot_id(extra["snapshot_id"], "asset event extra.snapshot_id")
                self.manifest(chosen)
                why = "named by the triggering dataset asset event"
                break
        if chosen is None:
            chosen, why = self.latest_id(), "newest snapshot (no pin, no triggering event)"
        if self.choice.train_on != "last_n":
            return chosen, why
        anchor = self.manifest(chosen)
        candidates = sorted((m for m in self.manifests() if m["source"].get("kind") != "union"
                             and _order(m) <= _order(anchor)), key=_order)
        window = [m["snapshot_id"] for m in candidates[-self.choice.last_n:]] or [chosen]
        if len(window) == 1:
            return window[0], f"{why}; last {self.choice.last_n} = just this one"
        union = self.union(window)
        return union["snapshot_id"], f"union of the last {len(window)} snapshots {window} ({why})"
