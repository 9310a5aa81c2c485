"""Batch predictions: run the `champion` over a configured input, write a versioned output.

Output: ``<LLMOPS_HOME>/predictions/<use_case>/v<model version>-<input hash>/`` with ``predictions.parquet``,
``predictions.jsonl`` and ``manifest.json``. The folder is keyed by model version and input content, written
atomically, and a re-run for the same version and input writes nothing new.
"""

from __future__ import annotations

import glob
import hashlib
import json
import logging
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from llmops import paths
from llmops.atomic import atomic_dir
from llmops.config import UseCaseConfig
from llmops.errors import ConfigError, DataError

log = logging.getLogger(__name__)


def read_batch_input(cfg: UseCaseConfig) -> tuple[pd.DataFrame, list[str]]:
    if not cfg.serving.batch_input:
        raise ConfigError(f"use case '{cfg.name}': serving.batch_input is not set")
    files = sorted(glob.glob(str(paths.resolve(cfg.serving.batch_input))))
    if not files:
        raise DataError(f"serving.batch_input: '{cfg.serving.batch_input}' matches no file")
    frames = []
    for f in files:
        reader = {".csv": pd.read_csv, ".parquet": pd.read_parquet}.get(Path(f).suffix)
        df = reader(f) if reader else pd.read_json(f, lines=True)
        if cfg.serving.batch_prompt_column not in df.columns:
            raise DataError(f"{f}: no column '{cfg.serving.batch_prompt_column}' (serving.batch_prompt_column)")
        frames.append(pd.DataFrame({"prompt": df[cfg.serving.batch_prompt_column].astype(str), "source_file": f,
                                    "source_row": range(len(df))}))
    return pd.concat(frames, ignore_index=True), files


def input_hash(df: pd.DataFrame) -> str:
    return hashlib.sha256("\n".join(df["prompt"]).encode()).hexdigest()[:12]


def predict_batch(cfg: UseCaseConfig, model, version: str, *, max_rows: int | None = None) -> dict:
    """Run ``model`` (a serving :class:`~llmops.serving.model_store.LoadedModel`) over the batch input; return the
    output manifest."""
    from llmops.evaluate.safety import SafetyFilter
    from llmops.model.decoding import generate

    df, files = read_batch_input(cfg)
    if max_rows:
        df = df.head(max_rows)
    out = paths.llmops_home() / "predictions" / cfg.name / f"v{version}-{input_hash(df)}"
    if (out / "manifest.json").exists():
        log.info("predictions for version %s and this input already exist at %s", version, out)
        return json.loads((out / "manifest.json").read_text())
    safety = SafetyFilter(cfg.evaluation.safety)
    completions = []
    step = cfg.serving.batch_size
    for i in range(0, len(df), step):
        completions += generate(model.model, model.tokenizer, model.template, df["prompt"].iloc[i:i + step].tolist(),
                                max_new_tokens=cfg.serving.max_new_tokens, max_len=cfg.training.max_seq_len,
                                batch_size=step)
        log.info("predicted %d/%d rows", min(i + step, len(df)), len(df))
    reasons = [safety.why_blocked(c) for c in completions]
    df = df.assign(completion=[None if r else c for c, r in zip(completions, reasons, strict=True)],
                   blocked=[r is not None for r in reasons], block_reason=reasons, model_name=cfg.model_name,
                   model_version=str(version), prompt_template_hash=model.template.hash)
    manifest = {"model_name": cfg.model_name, "model_version": str(version), "rows": len(df),
                "blocked": int(df["blocked"].sum()), "input_files": files, "uri": out.as_uri(),
                "prompt_template_hash": model.template.hash, "created_at": datetime.now(UTC).isoformat()}
    with atomic_dir(out, exists="keep", complete=lambda p: (p / "manifest.json").exists()) as built:
        df.to_parquet(built.path / "predictions.parquet", index=False)
        df.to_json(built.path / "predictions.jsonl", orient="records", lines=True, force_ascii=False)
        (built.path / "manifest.json").write_text(json.dumps(manifest, indent=2))
    log.info("wrote %d predictions (%d blocked) to %s", len(df), manifest["blocked"], out)
    return manifest
