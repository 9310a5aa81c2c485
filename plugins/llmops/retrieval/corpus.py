"""The corpus as versioned data: read through the project's own source readers, validated with the corpus's
expectation suite, and written with the snapshot machinery (content-addressed, lineage manifest, a dataset card that
``datasets.load_dataset`` opens) into its own store, ``${LLMOPS_HOME}/corpora/<use_case>/<snapshot_id>/``.

A row is a document: ``prompt`` holds its key (the source's ``prompt_column``), ``response`` its text
(``response_column``). The snapshot writer splits rows into train and eval by a hash of their key; a corpus uses
both, so :func:`documents` reads the union. The same documents give the same snapshot id, so an unchanged corpus
leads to the same index id and nothing is rebuilt.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from llmops import paths
from llmops.config import UseCaseConfig

log = logging.getLogger(__name__)


def store(cfg: UseCaseConfig):
    from llmops.data.snapshots.handle import Snapshots
    from llmops.data.snapshots.store import LocalStore

    return Snapshots(LocalStore(paths.llmops_home() / "corpora" / cfg.name, cfg.name))


def snapshot_corpus(cfg: UseCaseConfig, report_dir: Path | None = None) -> dict:
    """Read, validate and snapshot the corpus; returns the snapshot's manifest (the existing one when the same
    documents were snapshotted before). A suite that fails raises ``ValidationFailed`` naming the rows."""
    from llmops.data.ingest import read_source
    from llmops.data.validate import validate

    corpus = cfg.retrieval.corpus
    df, lineage = read_source(corpus.source)
    df = df.drop_duplicates(subset=["prompt", "response"]).reset_index(drop=True)
    summary = validate(df, paths.resolve(corpus.expectation_suite), report_dir)
    manifest = store(cfg).write_frame(df, source=lineage, validation=summary)
    log.info("corpus snapshot %s: %s documents", manifest["snapshot_id"], len(df))
    return manifest


def documents(cfg: UseCaseConfig, snapshot_id: str) -> list[tuple[str, str, str]]:
    """(key, text, source) of every document of the corpus snapshot, in key order."""
    handle = store(cfg)
    frames = [pd.read_parquet(handle.split_path(snapshot_id, split)) for split in ("train", "eval")]
    df = pd.concat(frames, ignore_index=True).sort_values(["prompt", "response"], kind="stable")
    if "source_line" in df:  # file:line, project-relative where the file is in the project (citations leave it)
        files = df["source_file"].astype(str).str.removeprefix(str(paths.PROJECT_ROOT) + "/")
        source = files + ":" + df["source_line"].astype(str)
    else:
        source = pd.Series([""] * len(df), index=df.index)
    return list(zip(df["prompt"].astype(str), df["response"].astype(str), source, strict=True))
