"""Local files as rows: JSONL, CSV or Parquet (optionally gzipped), read in batches, columns mapped.

Every error names the file and, where there is one, the line: ``data/a.jsonl:17: not valid JSON (...)``.
The rows carry ``source_file`` and ``source_line`` so later steps can point back at the raw row.
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
from collections.abc import Iterator
from pathlib import Path

import pandas as pd

from llmops import paths
from llmops.config import SourceConfig
from llmops.data.sources.rows import map_columns
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


def _open(path: Path):
    """A binary file handle; ``.gz`` files are decompressed as they are read."""
    if str(path).lower().endswith(".gz"):
        return gzip.open(path, "rb")
    return open(path, "rb")


def _gz_error(path: Path, e: Exception) -> DataError:
    return DataError(f"{path}: not a readable gzip file: {e}")


_BLANK_LINE = re.compile(rb"\n[ \t\r\f\v]*\n")


def _has_blank_lines(path: Path) -> bool:
    """Whether any line is blank; pyarrow's reader skips those silently and its row numbers would drift."""
    carry = b"\n"  # from the previous chunk's last newline on (at the start: as if a line had just ended)
    try:
        with _open(path) as f:
            while chunk := f.read(16 << 20):
                data = carry + chunk
                if _BLANK_LINE.search(data):
                    return True
                carry = data[data.rfind(b"\n"):]
    except (EOFError, gzip.BadGzipFile) as e:
        raise _gz_error(path, e) from None
    return False


def _iter_jsonl_lines(path: Path, batch: int, skip_rows: int = 0) -> Iterator[pd.DataFrame]:
    """Line by line: slower, but names the first bad line exactly. Skips the first ``skip_rows`` records."""
    records, lines, seen = [], [], 0
    try:
        with _open(path) as f:
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
                seen += 1
                if seen <= skip_rows:
                    continue
                records.append(obj)
                lines.append(lineno)
                if len(records) >= batch:
                    yield _frame(records, lines)
                    records, lines = [], []
    except (OSError, EOFError, gzip.BadGzipFile) as e:
        raise _gz_error(path, e) from None
    if records:
        yield _frame(records, lines)


def _frame(records: list[dict], lines: list[int]) -> pd.DataFrame:
    df = pd.DataFrame.from_records(records)
    df["source_line"] = lines
    return df


def _arrow_batches(path: Path, batch: int) -> Iterator[pd.DataFrame]:
    """pyarrow's streaming JSON reader, regrouped into frames of about ``batch`` rows."""
    import pyarrow as pa
    import pyarrow.json as pj

    stream = pa.input_stream(str(path), compression="gzip" if str(path).lower().endswith(".gz") else None)
    reader = pj.open_json(stream, read_options=pj.ReadOptions(block_size=4 << 20),
                          parse_options=pj.ParseOptions(newlines_in_values=False))
    size, line = batch, 1
    pending = None
    for record_batch in reader:
        for col in record_batch.columns:  # pyarrow passes some invalid bytes through; the exact reader names the line
            if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
                col.validate(full=True)
        table = pa.Table.from_batches([record_batch]) if pending is None else pa.concat_tables(
            [pending, pa.Table.from_batches([record_batch])])
        while table.num_rows >= size:
            yield _numbered(table.slice(0, size), line)
            line += size
            table = table.slice(size)
        pending = table
    if pending is not None and pending.num_rows:
        yield _numbered(pending, line)


def _numbered(table, first_line: int) -> pd.DataFrame:
    df = table.to_pandas()
    df["source_line"] = range(first_line, first_line + len(df))
    return df


def _iter_jsonl(path: Path, batch: int) -> Iterator[pd.DataFrame]:
    """Fast path with pyarrow's streaming reader; on any error (or blank lines, which would shift the line
    numbers) the exact reader takes over from the first row not yet returned, and names the bad line."""
    import pyarrow as pa

    if _has_blank_lines(path):
        yield from _iter_jsonl_lines(path, batch)
        return
    done = 0
    try:
        for df in _arrow_batches(path, batch):
            done += len(df)
            yield df
    except (pa.ArrowInvalid, pa.ArrowTypeError, UnicodeDecodeError, EOFError, gzip.BadGzipFile, OSError) as e:
        log.info("%s: fast JSON reader stopped (%s); reading line by line from row %d", path, e, done + 1)
        yield from _iter_jsonl_lines(path, batch, skip_rows=done)


def _iter_csv(path: Path, batch: int) -> Iterator[pd.DataFrame]:
    line = 2  # line 1 is the header
    try:
        with _open(path) as f:
            for df in pd.read_csv(f, dtype=str, keep_default_na=False, encoding="utf-8", chunksize=batch):
                df["source_line"] = range(line, line + len(df))
                line += len(df)
                yield df
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    except pd.errors.ParserError as e:
        raise DataError(f"{path}: malformed CSV: {e}") from None
    except pd.errors.EmptyDataError:
        return
    except (EOFError, gzip.BadGzipFile) as e:
        raise _gz_error(path, e) from None


def _iter_parquet(path: Path, batch: int) -> Iterator[pd.DataFrame]:
    import pyarrow.parquet as pq

    try:
        if str(path).lower().endswith(".gz"):
            with _open(path) as f:
                pf = pq.ParquetFile(io.BytesIO(f.read()))
        else:
            pf = pq.ParquetFile(path, pre_buffer=False)  # constant memory over a large file
        line = 1  # row number within the file
        for record_batch in pf.iter_batches(batch_size=batch):
            df = record_batch.to_pandas()
            df["source_line"] = range(line, line + len(df))
            line += len(df)
            yield df
    except DataError:
        raise
    except Exception as e:  # pyarrow raises several types for a broken file
        raise DataError(f"{path}: not a readable Parquet file: {e}") from None


READERS = {"jsonl": _iter_jsonl, "csv": _iter_csv, "parquet": _iter_parquet}


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


def iter_file(path: Path, source: SourceConfig, name: str | None = None, *, batch: int) -> Iterator[pd.DataFrame]:
    """One file's rows in batches of at most ``batch`` rows, columns mapped to prompt/response/timestamp; ``name``
    is how errors refer to it. A file without rows is an error."""
    where = name or str(path)
    rows = 0
    try:
        for df in READERS[detect_format(where, source.format)](path, batch):
            if len(df):
                rows += len(df)
                yield map_columns(df, source, where)
    except DataError as e:
        if name and name != str(path):  # a downloaded object: name it by its gs:// URL, not the local copy
            raise DataError(str(e).replace(str(path), name, 1)) from None
        raise
    if not rows:
        raise DataError(f"{where}: file has no rows")


def read_file(path: Path, source: SourceConfig, name: str | None = None, batch: int = 100_000) -> pd.DataFrame:
    """Every row of one file in one frame (see :func:`iter_file`; ``batch`` is only how it is read)."""
    return pd.concat(list(iter_file(path, source, name, batch=batch)), ignore_index=True)
