"""Read a use case's source (local files, GCS objects or a BigQuery query) into prompt/response rows.

Every error names the file and, where there is one, the line: ``data/a.jsonl:17: not valid JSON (...)``.
The result carries ``source_file`` and ``source_line`` so later steps can point back at the raw row.
Local paths are checked against the source's ``allowed_roots`` and URI schemes before anything is read.
"""

from __future__ import annotations

import glob
import gzip
import io
import json
import logging
import os
import re
from datetime import datetime
from pathlib import Path

import pandas as pd

from llmops import paths
from llmops.config import SourceConfig
from llmops.errors import DataError

log = logging.getLogger(__name__)

FORMATS = {".jsonl": "jsonl", ".json": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet"}
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")


def detect_format(path: Path | str, declared: str = "auto") -> str:
    if declared != "auto":
        return declared
    name = str(path).lower().removesuffix(".gz")
    fmt = FORMATS.get(Path(name).suffix)
    if fmt is None:
        raise DataError(f"{path}: unknown file type '{Path(name).suffix}' (use .jsonl, .csv or .parquet, "
                        "optionally .gz, or set format)")
    return fmt


def _raw_bytes(path: Path) -> bytes:
    data = path.read_bytes()
    if str(path).lower().endswith(".gz"):
        try:
            data = gzip.decompress(data)
        except (OSError, EOFError) as e:
            raise DataError(f"{path}: not a readable gzip file: {e}") from None
    return data


def _read_jsonl_lines(path: Path, data: bytes) -> pd.DataFrame:
    """Line by line: slower, but names the first bad line exactly."""
    records, lines = [], []
    for lineno, raw in enumerate(data.split(b"\n"), start=1):
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


def _read_jsonl(path: Path) -> pd.DataFrame:
    """Fast path with pyarrow's reader when every line is an object; any doubt falls back to the exact reader."""
    import pyarrow as pa
    import pyarrow.json as pj

    data = _raw_bytes(path)
    try:
        data.decode("utf-8")  # pyarrow would accept some invalid bytes; the exact reader names the line
    except UnicodeDecodeError:
        return _read_jsonl_lines(path, data)
    n_lines = data.count(b"\n") + (0 if data.endswith(b"\n") or not data else 1)
    try:
        table = pj.read_json(pa.BufferReader(data), parse_options=pj.ParseOptions(newlines_in_values=False))
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError):
        return _read_jsonl_lines(path, data)
    if table.num_rows != n_lines:  # blank lines: line numbers would drift, so count them exactly
        return _read_jsonl_lines(path, data)
    df = table.to_pandas()
    df["source_line"] = range(1, len(df) + 1)
    return df


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(io.BytesIO(_raw_bytes(path)), dtype=str, keep_default_na=False, encoding="utf-8")
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
        df = pd.read_parquet(io.BytesIO(_raw_bytes(path)))
    except DataError:
        raise
    except Exception as e:  # pyarrow raises several types for a broken file
        raise DataError(f"{path}: not a readable Parquet file: {e}") from None
    df["source_line"] = range(1, len(df) + 1)  # row number within the file
    return df


READERS = {"jsonl": _read_jsonl, "csv": _read_csv, "parquet": _read_parquet}


def check_local_path(pattern: str, allowed_roots: list[str]) -> Path:
    """Reject an unknown URI scheme or a path outside the allowed roots, before any read."""
    m = _SCHEME.match(pattern)
    if m and m.group(1).lower() != "file":
        raise DataError(f"source.path: '{pattern}': scheme '{m.group(1)}://' is not a local file "
                        "(use kind: gcs for gs://, or a local path)")
    if m:
        pattern = pattern[len("file://"):]
    resolved = paths.resolve(pattern)
    # the fixed part of a glob (up to the first wildcard) must lie inside an allowed root
    fixed = Path(re.split(r"[*?\[]", str(resolved), maxsplit=1)[0]).resolve()
    extra = [r for r in os.environ.get("LLMOPS_DATA_ROOTS", "").split(os.pathsep) if r]
    roots = [paths.resolve(r).resolve() for r in [*allowed_roots, *extra]]
    if not any(fixed == r or fixed.is_relative_to(r) for r in roots):
        raise DataError(f"source.path: '{pattern}' resolves to {fixed}, outside the allowed roots "
                        f"{[str(r) for r in roots]} (set source.allowed_roots)")
    return resolved


def list_files(source: SourceConfig) -> list[Path]:
    pattern = str(check_local_path(source.path, source.allowed_roots))
    files = sorted(Path(p) for p in glob.glob(pattern, recursive=True) if Path(p).is_file())
    if not files:
        raise DataError(f"source.path: '{source.path}' matches no file (looked for {pattern})")
    return files


def map_columns(df: pd.DataFrame, source: SourceConfig, where: str) -> pd.DataFrame:
    """Rename the configured columns to prompt/response/timestamp/key; check they exist and hold text."""
    mapping = {source.prompt_column: "prompt", source.response_column: "response"}
    if source.timestamp_column:
        mapping[source.timestamp_column] = "timestamp"
    if source.key_column:
        mapping[source.key_column] = "key"
    if df.empty:
        raise DataError(f"{where}: file has no rows")
    missing = [c for c in mapping if c not in df.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {missing}; found {sorted(c for c in df.columns if c != 'source_line')}")
    out = df[list(mapping) + ["source_line"]].rename(columns=mapping)
    for col in ("prompt", "response"):
        # nulls (None, or NaN/NA once pandas 3 infers a string column) are left to the expectation suite
        if pd.api.types.is_string_dtype(out[col].dtype) and not pd.api.types.is_object_dtype(out[col].dtype):
            continue
        bad = out[col].map(lambda v: not isinstance(v, str) and not _is_null(v))
        if bad.any():
            first = out.loc[bad.idxmax()]
            raise DataError(
                f"{where}:{first['source_line']}: column '{mapping_inv(mapping)[col]}' must be text, "
                f"got {type(first[col]).__name__} {first[col]!r}"
            )
    if "key" in out:
        out["key"] = out["key"].astype(str)
    if "timestamp" in out:
        try:
            out["timestamp"] = pd.to_datetime(out["timestamp"], utc=True)
        except (ValueError, TypeError) as e:
            raise DataError(f"{where}: column '{source.timestamp_column}' is not a timestamp: {e}") from None
    out.insert(len(out.columns) - 1, "source_file", where)
    return out


def read_file(path: Path, source: SourceConfig, name: str | None = None) -> pd.DataFrame:
    """Read one file and map its columns to prompt/response/timestamp; ``name`` is how errors refer to it."""
    try:
        df = READERS[detect_format(name or path, source.format)](path)
    except DataError as e:
        if name and name != str(path):  # a downloaded object: name it by its gs:// URL, not the local copy
            raise DataError(str(e).replace(str(path), name, 1)) from None
        raise
    return map_columns(df, source, name or str(path))


def _is_null(v) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float) and v != v)


def mapping_inv(mapping: dict[str, str]) -> dict[str, str]:
    return {v: k for k, v in mapping.items()}


def in_interval(df: pd.DataFrame, interval: tuple[datetime, datetime] | None, source: SourceConfig) -> pd.DataFrame:
    """Rows whose timestamp lies in [start, end). No interval, or no timestamp column: every row."""
    if interval is None:
        return df
    if "timestamp" not in df:
        log.warning("source has no timestamp_column: every run reads the whole source, not just its interval")
        return df
    start, end = (pd.Timestamp(t).tz_convert("UTC") if pd.Timestamp(t).tzinfo else pd.Timestamp(t, tz="UTC")
                  for t in interval)
    return df[(df["timestamp"] >= start) & (df["timestamp"] < end)].reset_index(drop=True)


def ingest(source: SourceConfig, interval: tuple[datetime, datetime] | None = None) -> pd.DataFrame:
    """The rows of :func:`read_source`, without the lineage."""
    return read_source(source, interval)[0]


def read_source(source: SourceConfig, interval: tuple[datetime, datetime] | None = None,
                work_dir: Path | None = None) -> tuple[pd.DataFrame, dict]:
    """Read every row the source names within ``interval``; returns the rows and the lineage of the read.

    Rows keep their file and line for error messages and lineage."""
    if source.kind == "bigquery":
        from llmops.data.sources.bigquery import read_query

        df, lineage = read_query(source, interval)
        df = map_columns(df, source, "bigquery") if len(df) else df
        return df, lineage
    if source.kind == "gcs":
        from llmops.data.sources.gcs import download

        pairs = download(source, work_dir or paths.llmops_home() / "tmp")
    else:
        pairs = [(p, str(p)) for p in list_files(source)]
    frames = []
    for local, name in pairs:
        df = in_interval(read_file(local, source, name), interval, source)
        log.info("read %d rows from %s", len(df), name)
        frames.append(df)
    out = pd.concat(frames, ignore_index=True)
    log.info("ingested %d rows from %d file(s)", len(out), len(frames))
    lineage = {"kind": source.kind, "path": source.path, "files": [name for _, name in pairs]}
    return out, lineage
