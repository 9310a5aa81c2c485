"""A snapshot's ``README.md``: a Hugging Face dataset card derived only from its manifest.

With it a snapshot folder is a Hugging Face dataset: ``datasets.load_dataset("<snapshot folder>")`` gives the
``train`` and ``eval`` splits (the YAML front matter names their Parquet files explicitly, so the JSONL copies
next to them are not read twice), typed as the manifest's columns and checked against its row counts. The body
carries the lineage (source, interval, parents, validation, code version) for a person reading the card on the
Hub or in a bucket. Nothing here feeds the snapshot id or the manifest: the card is a view of the manifest (plus the
Parquet files' sizes, which ``datasets`` wants in ``num_bytes``).
"""

from __future__ import annotations

import json
import re

import yaml

CARD = "README.md"
SPLITS = ("train", "eval")

_SIMPLE = {
    "object": "string", "str": "string", "string": "string", "string[python]": "string",
    "string[pyarrow]": "string", "large_string": "large_string", "bool": "bool", "boolean": "bool",
    "int8": "int8", "int16": "int16", "int32": "int32", "int64": "int64",
    "uint8": "uint8", "uint16": "uint16", "uint32": "uint32", "uint64": "uint64",
    "float16": "float16", "float32": "float32", "float64": "float64",
}
_DATETIME = re.compile(r"^datetime64\[(s|ms|us|ns)(?:, (.+))?\]$")


def feature_dtype(pandas_dtype: str) -> str | None:
    """The ``datasets`` dtype of a pandas dtype as the manifest writes it (``str(df.dtypes[c])``), or None when
    there is no plain equivalent. ``Int64`` and friends (nullable) map like their numpy counterparts."""
    text = str(pandas_dtype)
    if text.lower() in _SIMPLE and text[0].isupper():  # pandas' nullable Int64, Float64, Boolean...
        text = text.lower()
    if text in _SIMPLE:
        return _SIMPLE[text]
    m = _DATETIME.match(text)
    if m:
        unit, tz = m.groups()
        return f"timestamp[{unit}, tz={tz}]" if tz else f"timestamp[{unit}]"
    return None


def features(columns: dict[str, str]) -> list[dict] | None:
    """``dataset_info.features`` for the manifest's columns; None (let ``datasets`` read the Parquet schema) when
    a column has no plain equivalent or there are no columns (a snapshot without rows)."""
    out = [{"name": name, "dtype": feature_dtype(dtype)} for name, dtype in columns.items()]
    if not out or any(f["dtype"] is None for f in out):
        return None
    return out


def front_matter(manifest: dict, split_bytes: dict[str, int] | None = None) -> dict:
    """``configs`` (the split -> Parquet file mapping) and ``dataset_info`` (features, and each split's row count,
    which ``load_dataset`` checks). ``split_bytes``: each split's size in bytes (``datasets`` requires the field;
    the snapshot gives its Parquet file sizes), 0 when unknown."""
    info: dict = {"config_name": "default"}
    feats = features(manifest.get("columns") or {})
    if feats:
        info["features"] = feats
    info["splits"] = [{"name": s, "num_bytes": int((split_bytes or {}).get(s, 0)),
                       "num_examples": int(manifest["rows"][s])} for s in SPLITS]
    return {
        "pretty_name": f"{manifest['use_case']} snapshot {manifest['snapshot_id']}",
        "tags": ["llmops", "snapshot", manifest["use_case"]],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s, "path": f"{s}.parquet"} for s in SPLITS]}],
        "dataset_info": info,
    }


def _json(value) -> str:
    return json.dumps(value, indent=2, default=str, sort_keys=True)


def render(manifest: dict, split_bytes: dict[str, int] | None = None) -> str:
    """The card's text: YAML front matter for ``datasets`` and the Hub, then the lineage in Markdown."""
    m = manifest
    sid, rows, validation = m["snapshot_id"], m["rows"], m.get("validation") or {}
    source = m.get("source") or {}
    interval = m.get("interval") or {}
    parents = m.get("parents") or []
    lines = [
        "---",
        yaml.safe_dump(front_matter(m, split_bytes), sort_keys=False, allow_unicode=True).rstrip(),
        "---",
        "",
        f"# {m['use_case']} snapshot `{sid}`",
        "",
        "An immutable, content-addressed dataset snapshot written by the LLMOps dataset DAG. This card is derived "
        "from `manifest.json` (the record of truth); the snapshot id is a hash of the rows and the split rule.",
        "",
        "| | |",
        "|---|---|",
        f"| Snapshot id | `{sid}` |",
        f"| Use case | `{m['use_case']}` |",
        f"| URI | `{m.get('uri', '')}` |",
        f"| Created at | {m.get('created_at', '')} |",
        f"| Source kind | `{source.get('kind', 'unknown')}` |",
        (f"| Interval | {interval.get('start', '-')} to {interval.get('end', '-')} |" if interval
         else "| Interval | - |"),
        f"| Partition key | {m.get('partition_key') or '-'} |",
        f"| Rows | {rows.get('input', 0)} in, {rows['train']} train, {rows['eval']} eval |",
        f"| Parents | {', '.join(f'`{p}`' for p in parents) if parents else 'none'} |",
        f"| Validation | {'passed' if validation.get('success') else 'FAILED' if 'success' in validation else '-'}"
        f"{' (suite `' + str(validation['suite']) + '`)' if validation.get('suite') else ''} |",
        f"| Code version | `{m.get('code_version', '')}` |",
        "",
        "## How to load",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'ds = load_dataset("path/to/{sid}")  # this folder; gives the train and eval splits',
        "",
        "# from the project, wherever the use case keeps its snapshots (a local folder or gs://):",
        "from llmops.config import load_by_name",
        "from llmops.data.snapshots.handle import Snapshots",
        f'ds = load_dataset(str(Snapshots.of(load_by_name("{m["use_case"]}")).dataset_folder("{sid}")))',
        "```",
        "",
        "## Source",
        "",
        "```json",
        _json(source),
        "```",
        "",
        "## Split",
        "",
        "```json",
        _json(m.get("split") or {}),
        "```",
        "",
        "## Preparation steps (rows in / out)",
        "",
        *[f"- `{s.get('step')}`: {s.get('rows_in')} -> {s.get('rows_out')}" for s in m.get("steps") or []],
        "",
        "## Validation",
        "",
        "```json",
        _json(validation),
        "```",
        "",
        "## Columns",
        "",
        *[f"- `{c}`: {t}" for c, t in (m.get("columns") or {}).items()],
        "",
    ]
    return "\n".join(lines)
