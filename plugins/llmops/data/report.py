"""A self-contained HTML validation report (the equivalent of a GX Data Docs page for one run).

Written next to the snapshot attempt (the DAG run's folder) and copied into the snapshot; the task log links it.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from llmops.atomic import write_text

_STYLE = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;"
          "padding:4px 8px;text-align:left;vertical-align:top}.fail{background:#fde8e8}.warn{background:#fdf6e3}"
          ".ok{color:#161}code{font-size:90%}")


def _rows(items: list[dict], css: str, label: str) -> list[str]:
    out = []
    for f in items:
        args = ", ".join(f"{k}={v!r}" for k, v in f["kwargs"].items())
        examples = "<br>".join(f"{html.escape(e['where'])}: <code>{html.escape(repr(e['value']))}</code>"
                               for e in f["examples"])
        count = f["unexpected_count"] if f["unexpected_count"] is not None else f"observed {f['observed_value']!r}"
        out.append(f"<tr class='{css}'><td>{label}</td><td><code>{html.escape(f['expectation'])}"
                   f"({html.escape(args)})</code></td><td>{html.escape(str(count))}</td><td>{examples}</td></tr>")
    return out


def render(summary: dict) -> str:
    verdict = "PASSED" if summary["success"] else "FAILED"
    head = (f"<h1>Validation {verdict}: suite {html.escape(summary['suite'])}</h1>"
            f"<p class='{'ok' if summary['success'] else 'fail'}'>{summary['successful']}/{summary['evaluated']}"
            f" expectations passed on {summary.get('rows', '?')} rows; {len(summary.get('warnings', []))} warning(s)."
            f" Suite file: <code>{html.escape(summary.get('suite_path', ''))}</code></p>")
    rows = _rows(summary["failed"], "fail", "failed") + _rows(summary.get("warnings", []), "warn", "warning")
    table = ("<table><tr><th>status</th><th>expectation</th><th>unexpected rows</th><th>examples (file:line)</th>"
             "</tr>" + "".join(rows) + "</table>") if rows else "<p class='ok'>No unexpected rows.</p>"
    return f"<!doctype html><html><head><meta charset='utf-8'><title>validation</title><style>{_STYLE}</style>" \
           f"</head><body>{head}{table}</body></html>"


def write_report(summary: dict, report_dir: Path) -> Path:
    """Write ``index.html`` and ``validation.json`` into ``report_dir``; return the HTML file's path."""
    report_dir.mkdir(parents=True, exist_ok=True)
    write_text(report_dir / "validation.json", json.dumps(summary, indent=2, default=str))
    index = report_dir / "index.html"
    write_text(index, render(summary))
    return index
