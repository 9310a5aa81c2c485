"""What each plot of the view shows, as plain data: functions over the records that :mod:`llmops.view.records`
reads (dicts and lists). Nothing here imports Airflow, MLflow or the HTTP layer, and nothing raises on missing
data: every function returns ``{"note": ...}`` saying what is missing (no versions, no eval loss, no judge) next to
whatever it could show. :mod:`llmops.view.pages` turns these into charts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

Z95 = 1.959963984540054
ROLES = ("champion", "challenger")


def _num(v) -> float | None:
    """A finite float, or None (missing, NaN, not a number)."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def mean_interval(scores: Iterable, z: float = Z95) -> tuple[float, float, float] | None:
    """(mean, low, high) of per-example scores, normal approximation (None under two finite scores)."""
    xs = [f for f in (_num(s) for s in scores) if f is not None]
    if len(xs) < 2:
        return None
    m = sum(xs) / len(xs)
    sd = math.sqrt(sum((x - m) ** 2 for x in xs) / (len(xs) - 1))
    half = z * sd / math.sqrt(len(xs))
    return m, m - half, m + half


def role(aliases: Iterable[str]) -> str:
    """champion, challenger (when not also champion) or previous: how a version is marked in the plots."""
    aliases = set(aliases or ())
    return next((r for r in ROLES if r in aliases), "previous")


# --- a use case's versions over time, per gate metric -------------------------------------------------------------

def versions_over_time(versions: list[dict], gate_metrics: Iterable[str],
                       intervals: dict[str, dict[str, tuple]] | None = None) -> dict:
    """One series per gate metric that any version has: points ``{x: version, y, low, high, role, created_at}``
    oldest first. ``versions`` as :func:`records.versions` returns them (``metrics`` values are tag strings);
    ``intervals``: ``{version: {metric: (low, high)}}`` where per-example scores were found."""
    if not versions:
        return {"series": [], "note": "no registered versions yet: nothing to plot"}
    intervals = intervals or {}
    wanted = [m for m in dict.fromkeys(gate_metrics) if any(m in v.get("metrics", {}) for v in versions)]
    note = None
    if not wanted:  # the rules name no tagged metric (e.g. only eval_loss_improvement): show what the versions have
        wanted = sorted({m for v in versions for m in v.get("metrics", {})})
        note = "no gate rule names a metric recorded on the versions: showing every recorded metric"
    series = []
    for metric in wanted:
        points = []
        for v in sorted(versions, key=lambda v: int(v["version"])):
            y = _num(v.get("metrics", {}).get(metric))
            if y is None:
                continue
            low, high = intervals.get(str(v["version"]), {}).get(metric) or (None, None)
            points.append({"x": int(v["version"]), "y": y, "low": _num(low), "high": _num(high),
                           "role": role(v.get("aliases")), "created_at": v.get("created_at")})
        series.append({"metric": metric, "points": points})
    if not series:
        note = "the versions carry no metrics"
    return {"series": series, "note": note}


# --- one gate decision as a forest plot ---------------------------------------------------------------------------

def _rule_label(r: dict) -> str:
    if r.get("vs") is None and r.get("reference") is None:
        return r.get("metric", "?")
    return f"{r.get('metric', '?')} vs {r.get('reference') or r.get('vs')}"


def gate_forest(decision: dict | None) -> dict:
    """Each rule as a row: relative rules (``vs``) as the improvement over the reference with its interval against
    the margin; absolute rules as the value against its ``min``/``max``. The judge's win rate (with its interval)
    and kappa when a judge ran, else a note saying none did."""
    if not decision:
        return {"relative": [], "absolute": [], "judge": None, "passed": None,
                "note": "no gate decision recorded for this run"}
    relative, absolute = [], []
    for r in decision.get("rules") or []:
        row = {"label": _rule_label(r), "metric": r.get("metric"), "passed": bool(r.get("passed")),
               "reason": r.get("reason", "")}
        if r.get("vs") is not None or "improvement" in r or "margin" in r:
            row.update(estimate=_num(r.get("improvement")), low=_num(r.get("ci_low")), high=_num(r.get("ci_high")),
                       thresholds=[t for t in (_num(r.get("margin")),) if t is not None],
                       value=_num(r.get("value")), reference_value=_num(r.get("reference_value")))
            relative.append(row)
        else:
            row.update(estimate=_num(r.get("value")), low=None, high=None,
                       thresholds=[t for t in (_num(r.get("min")), _num(r.get("max"))) if t is not None])
            absolute.append(row)
    notes = []
    if not relative and not absolute:
        notes.append("the gate had no rules (fail-closed)")
    missing = [row["label"] for row in relative + absolute if row["estimate"] is None]
    if missing:
        notes.append(f"no value for {', '.join(missing)} (the rule failed closed)")
    judge = None
    j = decision.get("judge")
    if j:
        m = j.get("metrics") or {}
        judge = {"model": j.get("model"), "reference": j.get("reference"), "trusted": j.get("trusted"),
                 "reason": j.get("reason"), "win_rate": _num(m.get("judge.win_rate")),
                 "low": _num(m.get("judge.win_rate_low")), "high": _num(m.get("judge.win_rate_high")),
                 "kappa": _num(m.get("judge.kappa")), "accuracy": _num(m.get("judge.accuracy")),
                 "pairs": m.get("judge.pairs"), "labels": m.get("judge.labels")}
    return {"relative": relative, "absolute": absolute, "judge": judge, "passed": decision.get("passed"),
            "judge_note": None if judge else "no judge ran for this gate",
            "note": "; ".join(notes) or None}


# --- training loss per run, sweeps --------------------------------------------------------------------------------

def training_loss(histories: dict[str, dict[str, list]]) -> dict:
    """``histories``: ``{run label: {"train_loss": [(step, value)], "train_eval_loss": [...]}}`` -> one train and
    (where logged) one eval series per run, sorted by step."""
    runs, without_eval = [], []
    for label, h in histories.items():
        train = sorted((int(s), v) for s, v in ((s, _num(v)) for s, v in h.get("train_loss") or []) if v is not None)
        ev = sorted((int(s), v) for s, v in ((s, _num(v)) for s, v in h.get("train_eval_loss") or [])
                    if v is not None)
        if not ev:
            without_eval.append(label)
        runs.append({"run": label, "train": [{"x": s, "y": v} for s, v in train],
                     "eval": [{"x": s, "y": v} for s, v in ev]})
    notes = []
    if not runs or not any(r["train"] for r in runs):
        notes.append("no training loss logged for this run")
    if without_eval:
        notes.append(f"no eval loss logged for {', '.join(without_eval)}")
    return {"runs": runs, "note": "; ".join(notes) or None}


def sweep_knobs(decision: dict | None) -> dict:
    """A sweep's metric against each knob it varied: ``{knob: [{x, y, trial, winner}]}`` from the sweep's
    decision (``trials``: overrides and value per trial). Not a sweep: a note."""
    trials = (decision or {}).get("trials") or {}
    if not trials:
        return {"metric": None, "knobs": {}, "note": "not a sweep: one training run"}
    winner, knobs = decision.get("winner"), {}
    for name, t in sorted(trials.items()):
        y = _num(t.get("value"))
        for knob, x in sorted((t.get("overrides") or {}).items()):
            if y is not None and _num(x) is not None:
                knobs.setdefault(knob, []).append({"x": _num(x), "y": y, "trial": name, "winner": name == winner})
    return {"metric": decision.get("metric"), "winner": winner, "knobs": knobs,
            "failed": list(decision.get("failed_trials") or []),
            "note": None if knobs else "the trials vary no numeric knob"}


# --- the regression suite per task --------------------------------------------------------------------------------

def regression_suite(metrics: dict[str, dict] | None, prefix: str = "regression.") -> dict:
    """``metrics``: the evaluation's ``{candidate: {name: value}}``. Per ``<task>.<metric>``: base, champion and
    challenger with their standard errors (``..._stderr``)."""
    metrics = metrics or {}
    keys = sorted({k.removeprefix(prefix) for c in metrics.values() for k in c
                   if k.startswith(prefix) and not k.endswith("_stderr")})
    if not keys:
        return {"tasks": [], "candidates": [], "note": "no regression suite ran for this evaluation"}
    candidates = [c for c in ("base", "champion", "challenger") if c in metrics]
    tasks = []
    for key in keys:
        row = {"task": key}
        for c in candidates:
            row[c] = {"y": _num(metrics[c].get(prefix + key)), "stderr": _num(metrics[c].get(f"{prefix}{key}_stderr"))}
        tasks.append(row)
    return {"tasks": tasks, "candidates": candidates, "note": None}


# --- dataset snapshots --------------------------------------------------------------------------------------------

def snapshot_rows(snapshots: list[dict]) -> dict:
    """Snapshots oldest first, with rows per split (``input`` is the source's count, not a split) and the
    validation outcome: ``{"labels", "splits": {split: [rows per snapshot]}, "validation": [True/False/None]}``."""
    if not snapshots:
        return {"labels": [], "splits": {}, "validation": [], "note": "no dataset snapshots yet"}
    ordered = sorted(snapshots, key=lambda s: (str(s.get("created_at") or ""), s["snapshot_id"]))
    splits = sorted({k for s in ordered for k in (s.get("rows") or {}) if k != "input"})
    labels = [f"{str(s.get('created_at') or '')[:16]} {s['snapshot_id'][:8]}"
              + (f" [{s['partition_key']}]" if s.get("partition_key") else "") for s in ordered]
    return {"labels": labels, "ids": [s["snapshot_id"] for s in ordered],
            "partitions": [s.get("partition_key") for s in ordered],
            "splits": {sp: [int((s.get("rows") or {}).get(sp) or 0) for s in ordered] for sp in splits},
            "validation": [(s.get("validation") or {}).get("success") for s in ordered], "note": None}


def preference_sizes(snapshots: list[dict]) -> dict:
    """The preference snapshots' sizes as :func:`snapshot_rows` has them (rows per split per snapshot, oldest first,
    labelled by day), or a note where there are none."""
    out = snapshot_rows(snapshots)
    if not snapshots:
        out["note"] = ("no preference snapshots yet (the feedback DAG writes one per day with at least "
                       "feedback.min_rows rows)")
    return out


# --- feedback and serving per day ---------------------------------------------------------------------------------

def per_day(rows: Iterable[dict], fields: Iterable[str], day_key: str = "day") -> dict:
    """Rows already keyed by day (monitoring reports, feedback counts) as series per field, days in order."""
    rows = sorted((r for r in rows if r.get(day_key)), key=lambda r: r[day_key])
    fields = list(fields)
    if not rows:
        return {"days": [], "series": {}, "note": "nothing recorded yet"}
    return {"days": [r[day_key] for r in rows], "series": {f: [_num(r.get(f)) for r in rows] for f in fields},
            "note": None}


def feedback_per_day(records: Iterable[dict]) -> dict:
    """Feedback per day: how many, the share rated +1 and -1, how many came with a correction."""
    days: dict[str, dict] = {}
    for r in records:
        d = days.setdefault(r.get("day") or str(r.get("ts") or "")[:10], {"count": 0, "up": 0, "down": 0,
                                                                            "corrections": 0})
        d["count"] += 1
        d["up"] += r.get("rating") == 1
        d["down"] += r.get("rating") == -1
        d["corrections"] += bool(r.get("correction"))
    rows = [{"day": day, "count": d["count"], "corrections": d["corrections"], "up_share": d["up"] / d["count"],
             "down_share": d["down"] / d["count"]} for day, d in days.items() if day]
    out = per_day(rows, ["count", "corrections", "up_share", "down_share"])
    if out["note"]:
        out["note"] = "no feedback recorded yet (POST /v1/feedback on the serving API)"
    return out
