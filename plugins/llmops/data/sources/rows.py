"""What every reader does to its rows: the configured columns mapped to prompt/response/timestamp/key (checked to
exist and hold text), and the rows kept to the run's interval."""

from __future__ import annotations

import logging
from datetime import datetime

import pandas as pd

from llmops.config import SourceConfig
from llmops.errors import DataError

log = logging.getLogger(__name__)


def map_columns(df: pd.DataFrame, source: SourceConfig, where: str) -> pd.DataFrame:
    """Rename the configured columns to prompt/response/timestamp/key; check they exist and hold text."""
    mapping = {source.prompt_column: "prompt", source.response_column: "response"}
    if source.timestamp_column:
        mapping[source.timestamp_column] = "timestamp"
    if source.key_column:
        mapping[source.key_column] = "key"
    missing = [c for c in mapping if c not in df.columns]
    if missing:
        found = sorted(c for c in df.columns if c != "source_line")
        raise DataError(f"{where}: missing column(s) {missing}; found {found}")
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
        out["timestamp"] = _timestamps(out["timestamp"], f"{where}: column '{source.timestamp_column}'")
    out.insert(len(out.columns) - 1, "source_file", where)
    return out


def _timestamps(values: pd.Series, what: str) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values.dtype):
        return pd.to_datetime(values, utc=True)
    try:
        return pd.to_datetime(values, utc=True, format="ISO8601")
    except (ValueError, TypeError):
        try:
            return pd.to_datetime(values, utc=True, format="mixed")
        except (ValueError, TypeError) as e:
            raise DataError(f"{what} is not a timestamp: {e}") from None


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
