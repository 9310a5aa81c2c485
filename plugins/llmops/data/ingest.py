"""Read a use case's source files (JSONL, CSV, Parquet; a glob) into prompt/response rows.

Every error names the file and, where there is one, the line: ``data/a.jsonl:17: not valid JSON (...)``.
The result carries ``source_file`` and ``source_line`` so later steps can point back at the raw row.
"""

from __future__ import annotations

import glob
import json
import logging
from pathlib import Path

import pandas as pd

from llmops import paths
from llmops.config import SourceConfig
from llmops.errors import DataError

log = logging.getLogger(__name__)

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".csv": "csv", ".parquet": "parquet"}


def detect_format(path: Path, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise DataError(f"{path}: unknown file type '{path.suffix}' (use .jsonl, .csv or .parquet, or set format)")
    return fmt


def _read_jsonl(path: Path) -> pd.DataFrame:
    records, lines = [], []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, start=1):
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataError(f"{path}:{lineno}: not UTF-8 ({e.reason} at byte {e.start})") from None
            if not text.strip():
                continue
            try:
                obj = json.loads(text)
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{lineno}: not valid JSON ({e.msg} at column {e.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{lineno}: expected a JSON object, got {type(obj).__name__}")
            records.append(obj)
            lines.append(lineno)
    df = pd.DataFrame.from_records(records)
    df["source_line"] = lines
    return df


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8")
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    except pd.errors.ParserError as e:
        raise DataError(f"{path}: malformed CSV: {e}") from None
    except pd.errors.EmptyDataError:
        return pd.DataFrame()
    df["source_line"] = range(2, len(df) + 2)  # line 1 is the header
    return df


def _read_parquet(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_parquet(path)
    except Exception as e:  # pyarrow raises several types for a broken file
        raise DataError(f"{path}: not a readable Parquet file: {e}") from None
    df["source_line"] = range(1, len(df) + 1)  # row number within the file
    return df


READERS = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet}


def list_files(source: SourceConfig) -> list[Path]:
    pattern = str(paths.resolve(source.path))
    files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not files:
        raise DataError(f"source.path: '{source.path}' matches no file (looked for {pattern})")
    return files


def read_file(path: Path, source: SourceConfig) -> pd.DataFrame:
    """Read one file and map its columns to prompt/response/timestamp."""
    df = READERS[detect_format(path, source.format)](path)
    mapping = {source.prompt_column: "prompt", source.response_column: "response"}
    if source.timestamp_column:
        mapping[source.timestamp_column] = "timestamp"
    if df.empty:
        raise DataError(f"{path}: file has no rows")
    missing = [c for c in mapping if c not in df.columns]
    if missing:
        raise DataError(f"{path}: missing column(s) {missing}; found {sorted(c for c in df.columns if c != 'source_line')}")
    out = df[list(mapping) + ["source_line"]].rename(columns=mapping)
    for col in ("prompt", "response"):
        # nulls (None, or NaN/NA once pandas 3 infers a string column) are left to the expectation suite
        bad = out[col].map(lambda v: not isinstance(v, str) and not _is_null(v))
        if bad.any():
            first = out.loc[bad.idxmax()]
            raise DataError(
                f"{path}:{first['source_line']}: column '{mapping_inv(mapping)[col]}' must be text, "
                f"got {type(first[col]).__name__} {first[col]!r}"
            )
    if "timestamp" in out:
        try:
            out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
        except (ValueError, TypeError) as e:
            raise DataError(f"{path}: column '{source.timestamp_column}' is not a timestamp: {e}") from None
    out.insert(len(out.columns) - 1, "source_file", str(path))
    return out


def _is_null(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and v != v)


def mapping_inv(mapping: dict[str, str]) -> dict[str, str]:
    return {v: k for k, v in mapping.items()}


def ingest(source: SourceConfig) -> pd.DataFrame:
    """Read every file the source names; rows keep their file and line for error messages and lineage."""
    frames = []
    for path in list_files(source):
        df = read_file(path, source)
        log.info("read %d rows from %s", len(df), path)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    log.info("ingested %d rows from %d file(s)", len(out), len(frames))
    return out
