"""The specs of the view's plots: plain data that ``static/view.js`` hands to the bundled Chart.js (one
``<canvas data-chart>`` per plot, :func:`chart`). What each plot shows comes from :mod:`llmops.view.plots`; this
module only says how it is drawn (kind, series, colours, axes, tooltips); :mod:`llmops.view.pages` lays the pages
out."""

from __future__ import annotations

import json
from html import escape

ROLE_COLOURS = {"champion": "#d69e2e", "challenger": "#3182ce", "previous": "#a0aec0"}
PASS, FAIL, NEUTRAL = "#2f855a", "#c53030", "#718096"
PALETTE = ["#3182ce", "#dd6b20", "#38a169", "#805ad5", "#d53f8c", "#319795", "#718096", "#b7791f"]
# a page opened outside Airflow's frame (no Sec-Fetch-Dest header reached the server) moves into the frame
def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4g}"


def chart(chart_id: str, spec: dict, caption: str, height: int = 300) -> str:
    """One plot: a canvas whose ``data-chart`` is the spec (escaped JSON), and a caption."""
    data = escape(json.dumps(spec, separators=(",", ":"), allow_nan=False), quote=True)
    return (f"<figure class=plot><div class=box style='height:{height}px'><canvas id='{escape(chart_id)}' "
            f"data-chart='{data}'></canvas></div><figcaption>{escape(caption)}</figcaption></figure>")


# --- chart specs from the plots' data ------------------------------------------------------------------------------

def versions_chart(series: dict) -> dict:
    pts = series["points"]
    tips = [f"version {p['x']} ({p['role']}): {series['metric']} {p['y']:.4g}"
            + (f" [{p['low']:.4g}, {p['high']:.4g}]" if p["low"] is not None else "") for p in pts]
    return {"kind": "scatter", "legend": False,
            "datasets": [{"label": series["metric"], "data": [{"x": p["x"], "y": p["y"]} for p in pts],
                          "colors": [ROLE_COLOURS[p["role"]] for p in pts], "color": "#a0aec0", "showLine": True,
                          "low": [p["low"] for p in pts], "high": [p["high"] for p in pts], "tips": tips}],
            "x": {"title": "version", "type": "linear", "integer": True}, "y": {"title": series["metric"], **_span(
                [p["y"] for p in pts] + [p["low"] for p in pts] + [p["high"] for p in pts])}}


def _span(values: list) -> dict:
    """Axis limits that keep every point and whisker in view (Chart.js would fit the points only)."""
    vs = [v for v in values if v is not None]
    if not vs:
        return {}
    lo, hi = min(vs), max(vs)
    pad = (hi - lo) * 0.08 or abs(hi) * 0.05 or 0.05
    return {"min": lo - pad, "max": hi + pad}


def forest_chart(rows: list[dict], title: str) -> dict:
    """Rows top to bottom; the estimate with its interval (whiskers), each rule's threshold as a red tick."""
    est = [r for r in rows]
    data = [{"x": r["estimate"], "y": i} for i, r in enumerate(est) if r["estimate"] is not None]
    kept = [r for r in est if r["estimate"] is not None]
    tips = [f"{r['label']}: {r['estimate']:.4g}" + (f" [{r['low']:.4g}, {r['high']:.4g}]" if r["low"] is not None
                                                    else "") + f" ({'passed' if r['passed'] else 'failed'})"
            for r in kept]
    ticks = [{"x": t, "y": i} for i, r in enumerate(est) for t in r["thresholds"]]
    return {"kind": "scatter", "horizontal": True, "legend": True,
            "datasets": [{"label": "estimate (green passed, red failed)", "data": data, "tips": tips, "radius": 6,
                          "colors": [PASS if r["passed"] else FAIL for r in kept],
                          "low": [r["low"] for r in kept], "high": [r["high"] for r in kept]},
                         {"label": "threshold / margin", "data": ticks, "color": "#1a202c", "pointStyle": "line",
                          "rotation": 90, "radius": 12,
                          "tips": [f"{est[t['y']]['label']}: threshold {t['x']:.4g}" for t in ticks]}],
            "x": {"title": title, **_span([r["estimate"] for r in kept] + [r["low"] for r in kept]
                                          + [r["high"] for r in kept] + [t["x"] for t in ticks])},
            "y": {"ticks": [r["label"] for r in est], "type": "linear", "reverse": True}}


def loss_chart(loss: dict) -> dict:
    datasets = []
    for i, r in enumerate(loss["runs"]):
        colour = PALETTE[i % len(PALETTE)]
        datasets.append({"label": f"{r['run']} train loss", "data": r["train"], "color": colour, "showLine": True,
                         "radius": 2})
        if r["eval"]:
            datasets.append({"label": f"{r['run']} eval loss", "data": r["eval"], "color": colour, "showLine": True,
                             "dashed": True, "radius": 3})
    return {"kind": "scatter", "datasets": datasets, "x": {"title": "step", "type": "linear"}, "y": {"title": "loss"}}


def knob_chart(metric: str, knob: str, points: list[dict]) -> dict:
    return {"kind": "scatter", "legend": False,
            "datasets": [{"label": metric, "data": [{"x": p["x"], "y": p["y"]} for p in points], "radius": 6,
                          "colors": [ROLE_COLOURS["champion"] if p["winner"] else PALETTE[0] for p in points],
                          "tips": [f"{p['trial']}{' (winner)' if p['winner'] else ''}: {knob} {p['x']:g}, {metric} "
                                   f"{p['y']:.4g}" for p in points]}],
            "x": {"title": knob, "type": "linear"}, "y": {"title": metric}}


def regression_chart(suite: dict) -> dict:
    colours = {"base": "#a0aec0", "champion": ROLE_COLOURS["champion"], "challenger": ROLE_COLOURS["challenger"]}
    datasets = []
    for c in suite["candidates"]:
        ys = [t[c]["y"] for t in suite["tasks"]]
        ses = [t[c]["stderr"] for t in suite["tasks"]]
        datasets.append({"label": c, "data": ys, "color": colours[c],
                         "low": [None if y is None or s is None else y - s for y, s in zip(ys, ses, strict=True)],
                         "high": [None if y is None or s is None else y + s for y, s in zip(ys, ses, strict=True)],
                         "tips": [f"{c} {t['task']}: {_fmt(y)} ± {_fmt(s)}"
                                  for t, y, s in zip(suite["tasks"], ys, ses, strict=True)]})
    return {"kind": "bar", "labels": [t["task"] for t in suite["tasks"]], "datasets": datasets,
            "x": {"title": "task.metric"}, "y": {"title": "score (± stderr)", "beginAtZero": True}}


def snapshots_chart(rows: dict) -> dict:
    border = [PASS if ok else FAIL if ok is False else NEUTRAL for ok in rows["validation"]]
    datasets = []
    for i, (split, counts) in enumerate(rows["splits"].items()):
        datasets.append({"label": split, "data": counts, "color": PALETTE[i % len(PALETTE)], "stack": "rows",
                         "borderColors": border,
                         "tips": [f"{split}: {n} rows; validation "
                                  f"{'passed' if ok else 'failed' if ok is False else 'not run'}"
                                  for n, ok in zip(counts, rows["validation"], strict=True)]})
    return {"kind": "bar", "labels": rows["labels"], "datasets": datasets, "stacked": True,
            "x": {"title": "snapshot (created, id, partition); border green = validation passed, red = failed"},
            "y": {"title": "rows", "beginAtZero": True}}


def per_day_chart(days: dict, fields: list[str], title: str, thresholds: dict | None = None) -> dict:
    datasets = [{"label": f, "data": days["series"][f], "color": PALETTE[i % len(PALETTE)], "showLine": True}
                for i, f in enumerate(fields)]
    lines = [{"axis": "y", "value": limit, "label": f"{kind} {metric} {limit:g}"}
             for metric, (limit, kind) in (thresholds or {}).items() if metric in fields]
    return {"kind": "line", "labels": days["days"], "datasets": datasets, "thresholds": lines,
            "x": {"title": "day"}, "y": {"title": title, "beginAtZero": True}}


# --- pages -----------------------------------------------------------------------------------------------------------
