"""Write frames as JSON Lines with Arrow compute kernels (string escaping and joining in C++), several times
faster than ``DataFrame.to_json`` on long text. Text stays UTF-8 (no ``\\uXXXX`` for non-ASCII); timestamps are
ISO 8601 in UTC with a ``Z``; nulls are ``null``.
"""

from __future__ import annotations

import json
from typing import BinaryIO

import numpy as np
import pandas as pd

_ESCAPES = [("\\", "\\\\"), ('"', '\\"'), ("\n", "\\n"), ("\r", "\\r"), ("\t", "\\t")]
_OTHER_CONTROL = r"[\x00-\x08\x0b\x0c\x0e-\x1f]"


def _lit(text: str):
    import pyarrow as pa

    return pa.scalar(text, pa.large_string())


def _join(*parts):
    import pyarrow.compute as pc

    return pc.binary_join_element_wise(*parts, _lit(""))


def _quoted(arr):
    import pyarrow as pa
    import pyarrow.compute as pc

    out = arr.cast(pa.large_string())
    for old, new in _ESCAPES:
        out = pc.replace_substring(out, pattern=old, replacement=new)
    rare = pc.match_substring_regex(out, pattern=_OTHER_CONTROL)
    if pc.any(rare).as_py():  # other control characters: json.dumps those few values exactly
        values = arr.to_pylist()
        flags = rare.to_pylist()
        fixed = [json.dumps(v, ensure_ascii=False)[1:-1] if f else None for v, f in zip(values, flags, strict=True)]
        out = pc.if_else(rare, pa.array(fixed, type=pa.large_string()), out)
    return _join(_lit('"'), out, _lit('"'))


def _json_values(arr):
    """Each value of one column as its JSON text (null where missing)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    t = arr.type
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        text = _quoted(arr)
    elif pa.types.is_timestamp(t):
        utc = arr if t.tz is None else arr.cast(pa.timestamp(t.unit))
        text = pc.utf8_replace_slice(utc.cast(pa.large_string()), start=10, stop=11, replacement="T")
        text = _join(_lit('"'), text, _lit('Z"'))
    elif pa.types.is_boolean(t) or pa.types.is_integer(t):
        text = pc.cast(arr, pa.large_string())
        if pa.types.is_boolean(t):
            text = pc.utf8_lower(text)
    elif pa.types.is_floating(t):
        finite = pc.is_finite(arr)
        text = pc.if_else(finite, pc.cast(arr, pa.large_string()), pa.scalar(None, pa.large_string()))
    else:  # anything else: exactly, through json
        text = pa.array([None if v is None else json.dumps(v, ensure_ascii=False, default=str)
                         for v in arr.to_pylist()], type=pa.large_string())
    return pc.fill_null(text.cast(pa.large_string()), _lit("null"))


def write_jsonl(df: pd.DataFrame, out: BinaryIO) -> int:
    """Append ``df`` to ``out`` as JSON Lines; returns the bytes written."""
    import pyarrow as pa

    if not len(df):
        return 0
    table = pa.Table.from_pandas(df, preserve_index=False)
    parts = []
    for i, name in enumerate(table.column_names):
        parts += [_lit(("{" if i == 0 else ", ") + json.dumps(name, ensure_ascii=False) + ": "),
                  _json_values(table.column(name).combine_chunks())]
    parts.append(_lit("}\n"))
    lines = _join(*parts)
    offsets = np.frombuffer(lines.buffers()[1], dtype=np.int64)[lines.offset: lines.offset + len(lines) + 1]
    data = memoryview(lines.buffers()[2])[offsets[0]: offsets[-1]]
    out.write(data)
    return len(data)
