"""The view's HTML pages: small server-rendered tables, every value escaped. Links to DAG runs open in the
Airflow UI around the view (``target=_top``); links inside the view stay in it."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from llmops import links

STYLE = """body{font-family:system-ui,sans-serif;margin:16px;color:#1a202c}
table{border-collapse:collapse;margin:8px 0 20px}
th,td{border:1px solid #cbd5e0;padding:4px 8px;text-align:left;vertical-align:top;font-size:14px}th{background:#edf2f7}
code{font-size:13px}.ok{color:#276749;font-weight:600}.bad{color:#9b2c2c;font-weight:600}.alias{background:#ebf8ff;
border-radius:4px;padding:0 4px;margin-right:4px}ol.chain li{margin:6px 0}"""


def _page(title: str, body: str) -> str:
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title><style>{STYLE}</style>"
            f"</head><body><h1>{escape(title)}</h1>{body}</body></html>")


def _a(href: str, text: str, top: bool = False) -> str:
    return f"<a href='{escape(href, quote=True)}'{' target=_top' if top else ''}>{escape(str(text))}</a>"


def _outcome(ok) -> str:
    if ok is None:
        return "-"
    return "<span class=ok>passed</span>" if ok else "<span class=bad>failed</span>"


def _uc(name: str) -> str:
    return links.view(f"use-cases/{quote(name)}")


def _dag_runs(dag_id: str, run_ids: list[str]) -> str:
    return "<br>".join(_a(links.dag_run(dag_id, r), r, top=True) for r in run_ids) or "-"


def _aliases(v: dict) -> str:
    return "".join(f"<span class=alias>{escape(a)}</span>" for a in v["aliases"]) or "-"


def _rules(v: dict, sep: str = "<br>") -> str:
    return sep.join(escape(str(r)) for r in v["gate"].get("rules") or [])


def index(use_cases: list[dict]) -> str:
    rows = []
    for u in use_cases:
        link = _a(_uc(u["name"]), u["name"])
        rows.append(f"<tr><td>{link}</td><td>{escape(u['description'])}</td>"
                    f"<td><code>{escape(u['model_name'])}</code></td></tr>")
    return _page("LLMOps", "<table><tr><th>use case</th><th>description</th><th>registered model</th></tr>"
                           f"{''.join(rows)}</table>")


def _source(source: dict) -> str:
    if source.get("kind") == "bigquery":
        return f"BigQuery query <code>{escape((source.get('query') or '')[:300])}</code>"
    return "<br>".join(f"<code>{escape(f)}</code>" for f in source.get("files") or []) or "-"


def _rows(s: dict) -> str:
    return escape(", ".join(f"{k} {v}" for k, v in (s.get("rows") or {}).items()))


def _snapshot_row(name: str, s: dict) -> str:
    link = _a(links.snapshot_manifest(name, s["snapshot_id"]), s["snapshot_id"])
    val = s["validation"]
    return (f"<tr><td>{link}</td><td>{escape(str(s['partition_key'] or 'whole source'))}</td>"
            f"<td>{_rows(s)}</td><td>{_outcome(val['success'])} {escape(str(val.get('successful')))}/"
            f"{escape(str(val.get('evaluated')))}</td><td>{escape(', '.join(s['parents'])) or '-'}</td>"
            f"<td>{_dag_runs(name + '__dataset', s['dag_runs'])}</td><td>{escape(str(s['created_at']))}</td></tr>")


def _version_row(name: str, v: dict) -> str:
    link = _a(f"{_uc(name)}/versions/{quote(v['version'])}", v["version"])
    runs = [v["dag_run_id"]] if v["dag_run_id"] else []
    return (f"<tr><td>{link}</td><td>{_aliases(v)}</td>"
            f"<td>{escape(str(v['gate'].get('decision') or '-'))}<br><small>{_rules(v)}</small></td>"
            f"<td><code>{escape(str(v['snapshot_id']))}</code></td><td><code>{escape(str(v['base_model']))}</code></td>"
            f"<td>{_dag_runs(name + '__finetune', runs)}</td></tr>")


def use_case(name: str, model_name: str, snaps: list[dict], versions: list[dict]) -> str:
    srows = "".join(_snapshot_row(name, s) for s in snaps)
    vrows = "".join(_version_row(name, v) for v in versions)
    return _page(f"LLMOps: {name}", (
        f"<p>{_a(links.view('use-cases/'), 'all use cases')}</p><h2>Dataset snapshots</h2>"
        "<table><tr><th>snapshot</th><th>partition</th><th>rows</th><th>validation</th><th>parents</th>"
        f"<th>dataset DAG run</th><th>created</th></tr>{srows}</table>"
        f"<h2>Registered versions of <code>{escape(model_name)}</code></h2>"
        "<table><tr><th>version</th><th>aliases</th><th>gate decision and rules</th><th>snapshot</th>"
        f"<th>base model</th><th>finetune DAG run</th></tr>{vrows}</table>"))


def _snapshot_step(name: str, label: str, s: dict) -> str:
    link = _a(links.snapshot_manifest(name, s["snapshot_id"]), s["snapshot_id"])
    return (f"<li><b>{label}</b> {link} rows {_rows(s)}, validation "
            f"{_outcome(s['validation']['success'])}, dataset DAG run {_dag_runs(name + '__dataset', s['dag_runs'])}"
            "</li>")


def version(name: str, model_name: str, chain: dict) -> str:
    v, snap = chain["version"], chain["snapshot"]
    steps = [f"<li><b>source</b>: {_source((snap or {}).get('source') or {})}</li>"]
    steps += [_snapshot_step(name, "parent snapshot", p) for p in chain["parents"]]
    if snap:
        steps.append(_snapshot_step(name, "snapshot", snap))
    else:
        steps.append(f"<li><b>snapshot</b> <code>{escape(str(v['snapshot_id']))}</code> (manifest not found)</li>")
    runs = [v["dag_run_id"]] if v["dag_run_id"] else []
    mlflow = _a(links.mlflow_run(v["mlflow_run_id"]), v["mlflow_run_id"], top=True)
    steps.append(f"<li><b>fine-tuning run</b> {_dag_runs(name + '__finetune', runs)} on "
                 f"<code>{escape(str(v['base_model']))}</code>, MLflow run {mlflow}</li>")
    steps.append(f"<li><b>gate</b> {escape(str(v['gate'].get('decision') or '-'))}: {_rules(v, '; ')}</li>")
    registry = _a(links.model_version(model_name, v["version"]), f"{model_name} version {v['version']}", top=True)
    steps.append(f"<li><b>model version</b> {registry} {_aliases(v)}</li>")
    return _page(f"{model_name} version {v['version']}",
                 f"<p>{_a(_uc(name), name)}</p><ol class=chain>{''.join(steps)}</ol>")
