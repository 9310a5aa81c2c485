"""The view's HTML pages: server-rendered, every value escaped, plots drawn by the bundled Chart.js from a spec in
each ``<canvas data-chart>`` (``static/view.js``). Links inside the view stay in Airflow's frame; links to DAG runs
open in the Airflow UI around it (``target=_top``); links to MLflow open the MLflow UI in a new tab.

What each plot shows comes from :mod:`llmops.view.plots` (plain data); this module only lays it out."""

from __future__ import annotations

from html import escape
from urllib.parse import quote

from llmops import links
from llmops.view.charts import (
    _fmt,
    chart,
    forest_chart,
    knob_chart,
    loss_chart,
    per_day_chart,
    regression_chart,
    snapshots_chart,
    versions_chart,
)

STYLE = """body{font-family:system-ui,sans-serif;margin:16px;color:#1a202c}
table{border-collapse:collapse;margin:8px 0 20px}
th,td{border:1px solid #cbd5e0;padding:4px 8px;text-align:left;vertical-align:top;font-size:14px}th{background:#edf2f7}
code{font-size:13px}.ok{color:#276749;font-weight:600}.bad{color:#9b2c2c;font-weight:600}.alias{background:#ebf8ff;
border-radius:4px;padding:0 4px;margin-right:4px}ol.chain li{margin:6px 0}
nav.crumbs{font-size:14px;margin-bottom:8px}nav.crumbs a{margin-right:4px}
.plots{display:flex;flex-wrap:wrap;gap:16px}figure.plot{margin:0 0 16px;flex:1 1 520px;max-width:900px}
figure.plot .box{position:relative;height:300px}figcaption{font-size:13px;color:#4a5568;margin-top:4px}
p.note{background:#fffbea;border-left:4px solid #d69e2e;padding:6px 10px;font-size:14px}
pre{background:#f7fafc;padding:8px;font-size:13px;white-space:pre-wrap}dl.kv{display:grid;
grid-template-columns:max-content auto;gap:4px 16px;font-size:14px}dl.kv dt{font-weight:600}"""

FRAME_SCRIPT = ("<script>if(window.top===window){var p=location.pathname,i=p.indexOf('" + links.VIEW_PREFIX + "/');"
                "if(i>=0){location.replace(p.slice(0,i)+'/plugin/llmops'+p+location.search+location.hash)}}</script>")
# Airflow 3.3 sandboxes an external view's iframe (allow-scripts allow-same-origin allow-forms): a link with
# target=_top (a DAG run in the UI) or _blank (MLflow) clicked in the frame is refused by the browser. The frame is
# of the UI's own origin, so a click on such a link is handed to a copy of the link in the UI's own document, which
# no sandbox restricts. Outside a frame (or where the UI's document is out of reach) the link works as written.
FRAME_LINKS = ("<script>if(window.top!==window){document.addEventListener('click',function(e){"
               "var a=e.target.closest&&e.target.closest('a[target=_top],a[target=_blank]');"
               "if(!a||e.defaultPrevented||e.button!==0||e.ctrlKey||e.metaKey||e.shiftKey)return;"
               "try{var d=window.top.document,b=d.createElement('a');b.href=a.href;b.target=a.target;"
               "b.rel=a.rel;b.style.display='none';d.body.appendChild(b);e.preventDefault();b.click();b.remove()}"
               "catch(x){}})}</script>")


def _page(title: str, body: str, crumbs: list[tuple[str, str]] | None = None, charts: bool = False) -> str:
    nav = ""
    if crumbs:
        nav = "<nav class=crumbs>" + " &rsaquo; ".join(_a(h, t) if h else escape(t) for h, t in crumbs) + "</nav>"
    scripts = ""
    if charts:
        scripts = (f"<script src='{escape(links.view('static/chart.umd.min.js'))}'></script>"
                   f"<script src='{escape(links.view('static/view.js'))}' defer></script>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>{escape(title)}</title>{FRAME_SCRIPT}"
            f"{FRAME_LINKS}<style>{STYLE}</style>{scripts}</head><body>{nav}<h1>{escape(title)}</h1>{body}"
            "</body></html>")


def _a(href: str, text: str, top: bool = False, new: bool = False) -> str:
    target = " target=_top" if top else (" target=_blank rel=noopener" if new else "")
    return f"<a href='{escape(href, quote=True)}'{target}>{escape(str(text))}</a>"


def _note(text: str | None) -> str:
    return f"<p class=note>{escape(text)}</p>" if text else ""


def _outcome(ok) -> str:
    if ok is None:
        return "-"
    return "<span class=ok>passed</span>" if ok else "<span class=bad>failed</span>"


def _uc(name: str) -> str:
    return links.view(f"use-cases/{quote(name)}")


def _version_url(name: str, version) -> str:
    return f"{_uc(name)}/versions/{quote(str(version))}"


def _run_url(name: str, run_id: str, page: str) -> str:
    return f"{_uc(name)}/runs/{quote(run_id, safe='')}/{page}"


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
    link = _a(_version_url(name, v["version"]), v["version"])
    runs = [v["dag_run_id"]] if v["dag_run_id"] else []
    gate = escape(str(v["gate"].get("decision") or "-"))
    if v["dag_run_id"]:
        gate = _a(_run_url(name, v["dag_run_id"], "gate"), v["gate"].get("decision") or "decision")
    return (f"<tr><td>{link}</td><td>{_aliases(v)}</td>"
            f"<td>{gate}<br><small>{_rules(v)}</small></td>"
            f"<td><code>{escape(str(v['snapshot_id']))}</code></td><td><code>{escape(str(v['base_model']))}</code></td>"
            f"<td>{_dag_runs(name + '__finetune', runs)}</td></tr>")


def _plots(parts: list[str]) -> str:
    return f"<div class=plots>{''.join(parts)}</div>"


def use_case(name: str, model_name: str, snaps: list[dict], versions: list[dict], *, over_time: dict | None = None,
             snapshot_rows: dict | None = None, serving: dict | None = None, serving_limits: dict | None = None,
             gate_runs: list[dict] | None = None, feedback: dict | None = None,
             preferences: dict | None = None) -> str:
    body = [f"<h2>Versions of <code>{escape(model_name)}</code> over time</h2>"]
    if over_time is not None:
        body.append(_note(over_time["note"]))
        body.append(_plots([chart(f"versions-{s['metric']}", versions_chart(s),
                                  f"{s['metric']} per version: champion gold, challenger blue, previous grey; "
                                  "whiskers: 95% interval of the per-example mean") for s in over_time["series"]]))
    body.append("<h2>Dataset snapshots</h2>")
    if snapshot_rows is not None:
        body.append(_note(snapshot_rows["note"]))
        if snapshot_rows["labels"]:
            body.append(_plots([chart("snapshots", snapshots_chart(snapshot_rows),
                                      "rows per split and partition, oldest first; border: validation")]))
    if serving is not None:
        body.append("<h2>Serving per day</h2>")
        body.append(_note(serving["note"] and "no monitoring reports yet (the monitoring DAG writes one per day)"))
        if serving["days"]:
            body.append(_plots([
                chart("serving-latency", per_day_chart(serving, ["p50_latency_ms", "p95_latency_ms"], "ms",
                                                       serving_limits), "latency per day against its threshold"),
                chart("serving-rates", per_day_chart(serving, ["block_rate", "recitation_rate"], "rate",
                                                     serving_limits), "block and recitation rates per day"),
                chart("serving-drift", per_day_chart(serving, ["length_psi", "vocabulary_overlap"], "drift",
                                                     serving_limits), "input drift against the training snapshot")]))
    if feedback is not None:
        body.append("<h2>Feedback per day</h2>" + _note(feedback["note"]))
        if feedback["days"]:
            body.append(_plots([
                chart("feedback-count", per_day_chart(feedback, ["count", "corrections"], "feedback"),
                      "feedback and corrections per day"),
                chart("feedback-share", per_day_chart(feedback, ["up_share", "down_share"], "share"),
                      "share rated +1 and -1 per day")]))
    if preferences is not None:
        body.append("<h2>Preference snapshots</h2>" + _note(preferences["note"]))
        if preferences["labels"]:
            body.append(_plots([chart("preference-snapshots", snapshots_chart(preferences),
                                      "preference rows (pairs and singles) per split per snapshot, oldest first; "
                                      "border: validation")]))
    srows = "".join(_snapshot_row(name, s) for s in snaps)
    vrows = "".join(_version_row(name, v) for v in versions)
    body.append("<table><tr><th>snapshot</th><th>partition</th><th>rows</th><th>validation</th><th>parents</th>"
                f"<th>dataset DAG run</th><th>created</th></tr>{srows}</table>")
    body.append(f"<h2>Registered versions of <code>{escape(model_name)}</code></h2>")
    if not versions:
        body.append(_note("no registered versions yet: run the finetune DAG (a version is registered when its "
                          "gate passes)"))
    body.append("<table><tr><th>version</th><th>aliases</th><th>gate decision and rules</th><th>snapshot</th>"
                f"<th>base model</th><th>finetune DAG run</th></tr>{vrows}</table>")
    if gate_runs:
        rows = "".join(f"<tr><td>{_a(_run_url(name, r['dag_run_id'], 'gate'), r['dag_run_id'])}</td>"
                       f"<td>{_outcome(r['passed'])}</td><td>{escape(str(r['version'] or '-'))}</td>"
                       f"<td>{_a(_run_url(name, r['dag_run_id'], 'training'), 'training')}</td></tr>"
                       for r in gate_runs)
        body.append("<h2>Gate decisions (the newest 50 finetune runs)</h2>"
                    "<table><tr><th>finetune DAG run</th><th>gate</th><th>version</th>"
                    f"<th>training</th></tr>{rows}</table>")
    return _page(f"LLMOps: {name}", "".join(body), [(links.view("use-cases/"), "LLMOps"), ("", name)], charts=True)


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
    mlflow = _a(links.mlflow_run(v["mlflow_run_id"]), v["mlflow_run_id"], new=True)
    training = _a(_run_url(name, v["dag_run_id"], "training"), "training loss") if v["dag_run_id"] else "-"
    steps.append(f"<li><b>fine-tuning run</b> {_dag_runs(name + '__finetune', runs)} on "
                 f"<code>{escape(str(v['base_model']))}</code>, MLflow run {mlflow}, {training}</li>")
    gate = _a(_run_url(name, v["dag_run_id"], "gate"), "gate decision") if v["dag_run_id"] else "gate"
    steps.append(f"<li><b>{gate}</b> {escape(str(v['gate'].get('decision') or '-'))}: {_rules(v, '; ')}</li>")
    registry = _a(links.model_version(model_name, v["version"]), f"{model_name} version {v['version']}", new=True)
    steps.append(f"<li><b>model version</b> {registry} {_aliases(v)}</li>")
    return _page(f"{model_name} version {v['version']}", f"<ol class=chain>{''.join(steps)}</ol>",
                 [(links.view("use-cases/"), "LLMOps"), (_uc(name), name), ("", f"version {v['version']}")])


def _run_crumbs(name: str, run_id: str, version_no, here: str) -> list[tuple[str, str]]:
    crumbs = [(links.view("use-cases/"), "LLMOps"), (_uc(name), name)]
    if version_no:
        crumbs.append((_version_url(name, version_no), f"version {version_no}"))
    return [*crumbs, ("", f"{here} of {run_id}")]


def _judge(j: dict | None, note: str | None) -> str:
    if not j:
        return f"<h2>Judge</h2>{_note(note)}"
    spec = {"kind": "scatter", "horizontal": True, "legend": False,
            "datasets": [{"label": "win rate", "data": [{"x": j["win_rate"], "y": 0}] if j["win_rate"] is not None
                          else [], "low": [j["low"]], "high": [j["high"]], "radius": 6,
                          "tips": [f"win rate {_fmt(j['win_rate'])} [{_fmt(j['low'])}, {_fmt(j['high'])}] over "
                                   f"{j['pairs']} prompts"]}],
            "thresholds": [{"axis": "x", "value": 0.5, "label": "0.5 = tie", "color": "#718096"}],
            "x": {"title": "judge win rate of the challenger", "type": "linear", "min": 0, "max": 1},
            "y": {"ticks": [f"vs {j['reference']}"], "type": "linear"}}
    return ("<h2>Judge</h2>" + _plots([chart("judge", spec, f"judge {j['model']}: win rate with its interval; "
                                              f"kappa with people {_fmt(j['kappa'])}", height=140)])
            + f"<dl class=kv><dt>win rate</dt><dd>{_fmt(j['win_rate'])} [{_fmt(j['low'])}, {_fmt(j['high'])}]</dd>"
            f"<dt>kappa</dt><dd>{_fmt(j['kappa'])} ({escape(str(j['labels']))} labels)</dd>"
            f"<dt>trusted</dt><dd>{escape(str(j['trusted']))}: {escape(str(j['reason'] or ''))}</dd></dl>")


def gate(name: str, run_id: str, forest: dict, regression: dict, text: str, version_no=None,
         mlflow_run_id: str | None = None) -> str:
    body = [f"<p>verdict {_outcome(forest['passed'])}; DAG run "
            f"{_dag_runs(name + '__finetune', [run_id])}"
            + (f", MLflow run {_a(links.mlflow_run(mlflow_run_id), mlflow_run_id, new=True)}" if mlflow_run_id else "")
            + f", {_a(_run_url(name, run_id, 'training'), 'training loss')}</p>", _note(forest["note"])]
    plots = []
    if forest["relative"]:
        plots.append(chart("forest-relative", forest_chart(forest["relative"], "improvement over the reference"),
                           "relative rules: improvement (dot) with its confidence interval against the margin "
                           "(black tick)", height=80 + 40 * len(forest["relative"])))
    if forest["absolute"]:
        plots.append(chart("forest-absolute", forest_chart(forest["absolute"], "value"),
                           "absolute rules: value against its min/max (black tick)",
                           height=80 + 40 * len(forest["absolute"])))
    body.append("<h2>Rules</h2>" + _plots(plots))
    rows = "".join(f"<tr><td>{escape(r['label'])}</td><td>{_outcome(r['passed'])}</td><td>{escape(r['reason'])}</td>"
                   "</tr>" for r in forest["relative"] + forest["absolute"])
    body.append(f"<table><tr><th>rule</th><th>outcome</th><th>reason</th></tr>{rows}</table>")
    body.append(_judge(forest["judge"], forest.get("judge_note")))
    body.append("<h2>Regression suite</h2>" + _note(regression["note"]))
    if regression["tasks"]:
        body.append(_plots([chart("regression", regression_chart(regression),
                                  "per task: base, champion and challenger with their standard errors")]))
    if text:
        body.append(f"<h2>Decision</h2><pre>{escape(text)}</pre>")
    return _page(f"Gate decision of {run_id}", "".join(body), _run_crumbs(name, run_id, version_no, "gate"),
                 charts=True)


def training(name: str, run_id: str, loss: dict, knobs: dict, version_no=None, mlflow_runs: dict | None = None) -> str:
    runs = ", ".join(_a(links.mlflow_run(r), label, new=True) for label, r in (mlflow_runs or {}).items())
    body = [f"<p>DAG run {_dag_runs(name + '__finetune', [run_id])}; MLflow {runs or '-'}; "
            f"{_a(_run_url(name, run_id, 'gate'), 'gate decision')}</p>", _note(loss["note"])]
    if any(r["train"] or r["eval"] for r in loss["runs"]):
        body.append(_plots([chart("loss", loss_chart(loss), "training loss per step (solid), eval loss where logged "
                                                            "(dashed); one colour per run or trial")]))
    if knobs["knobs"]:
        body.append(f"<h2>Sweep: {escape(str(knobs['metric']))} per knob</h2>" + _note(knobs["note"]))
        body.append(_plots([chart(f"knob-{k}", knob_chart(knobs["metric"], k, pts),
                                  f"{knobs['metric']} against {k}; the winner in gold") for k, pts in
                            knobs["knobs"].items()]))
        if knobs["failed"]:
            body.append(_note(f"failed trials: {', '.join(knobs['failed'])}"))
    else:
        body.append("<h2>Sweep</h2>" + _note(knobs["note"]))
    return _page(f"Training of {run_id}", "".join(body), _run_crumbs(name, run_id, version_no, "training"),
                 charts=True)


def _value(v) -> str:
    if isinstance(v, dict):
        if not v:
            return "-"
        items = "".join(f"<dt>{escape(str(k))}</dt><dd>{_value(x)}</dd>" for k, x in v.items())
        return f"<dl class=kv>{items}</dl>"
    if isinstance(v, list):
        return "<br>".join(_value(x) for x in v) or "-"
    return f"<code>{escape(str(v))}</code>" if v is not None else "-"


def manifest(name: str, m: dict, raw_href: str) -> str:
    """A snapshot's manifest as a page: its fields as a definition list, nested values nested; the raw JSON one
    link away."""
    sid = m.get("snapshot_id", "?")
    body = f"<p>{_a(raw_href, 'raw JSON')}</p>{_value(m)}"
    return _page(f"Snapshot {sid}", body, [(links.view("use-cases/"), "LLMOps"), (_uc(name), name),
                                           ("", f"snapshot {sid}")])
