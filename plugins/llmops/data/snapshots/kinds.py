"""What a snapshot holds: its kind. A kind names the columns the snapshot id hashes (the content), the order a
split is read in (the sort key), the column whose hash decides a row's split, the folder its snapshots are stored
in beside the use case's, and the split rule it takes from the use case's config.

- ``dataset``: prompt/response rows (the dataset DAG). Content and order: prompt, response; split by the source's
  ``key`` column when there is one, else by the prompt; stored in ``<root>/<use_case>/``.
- ``preferences``: preference rows (the feedback DAG, :mod:`llmops.data.preferences`). Content and order: the
  row's ``key`` (a hash of its kind, prompt, answers and label); split by the prompt, so every pair of one prompt
  is on one side, with ``feedback.eval_fraction``; stored in ``<root>/<use_case>_preferences/``.

Every manifest names its kind (``kind``, ``content_columns``, ``sort_key``). A manifest written before kinds
existed has none: it is recognised by its columns (preference rows have ``key`` and ``rejected``), so those
snapshots are read as before.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from llmops.config import SplitConfig


def _dataset_split(cfg) -> SplitConfig:
    return cfg.split


def _preference_split(cfg) -> SplitConfig:
    """The dataset's seed, ``feedback.eval_fraction`` (the dataset's ``split.eval_fraction`` when unset)."""
    fraction = cfg.feedback.eval_fraction or cfg.split.eval_fraction
    return cfg.split.model_copy(update={"eval_fraction": fraction})


@dataclass(frozen=True)
class SnapshotKind:
    name: str
    content_columns: tuple[str, ...]  # what the snapshot id hashes (with ``timestamp`` when the rows have one)
    sort_key: tuple[str, ...]  # the canonical order of a split's rows
    split_column: str | None = None  # None: the ``key`` column when there is one, else ``prompt``
    folder_suffix: str = ""  # its store is ``<root>/<use_case><suffix>/``
    split_rule: Callable = _dataset_split  # the split rule of new snapshots, from the use case's config

    def folder(self, use_case: str) -> str:
        return f"{use_case}{self.folder_suffix}"

    def manifest_fields(self) -> dict:
        """What a manifest records of its kind."""
        return {"kind": self.name, "content_columns": list(self.content_columns), "sort_key": list(self.sort_key)}


DATASET = SnapshotKind("dataset", ("prompt", "response"), ("prompt", "response"))
PREFERENCES = SnapshotKind("preferences", ("key",), ("key",), split_column="prompt", folder_suffix="_preferences",
                           split_rule=_preference_split)
KINDS = {k.name: k for k in (DATASET, PREFERENCES)}


def kind_of(manifest: dict) -> str:
    """The kind a manifest names; for one written before kinds existed, the kind its columns show."""
    if manifest.get("kind"):
        return manifest["kind"]
    columns = manifest.get("columns") or {}
    return PREFERENCES.name if {"key", "rejected"} <= set(columns) else DATASET.name
