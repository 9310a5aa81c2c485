"""What the view shows, read from snapshot manifests, run summaries and the MLflow registry. Writes nothing. The
use case's config comes from the route, loaded once per request: nothing here reads its YAML again."""

from __future__ import annotations

import json
import logging
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from llmops import paths

if TYPE_CHECKING:
    from llmops.config import UseCaseConfig

log = logging.getLogger(__name__)


def use_cases() -> list[dict]:
    """The use cases whose files load; a broken file is listed with its error instead of hiding the others."""
    from llmops.config import load_each

    good, broken = load_each()
    return ([{"name": c.name, "description": c.description, "model_name": c.model_name} for c in good]
            + [{"name": b.path.stem, "description": f"does not load: {b.error}", "model_name": "-"} for b in broken])


_SUMMARY_CACHE: dict[Path, tuple[int, int, dict]] = {}


def _summaries(use_case: str) -> list[dict]:
    """Every run summary of the use case. Each file is parsed again only when its modification time or size
    changed (a page with 1,000 runs stats 1,000 files instead of parsing them)."""
    root = paths.runs_root(use_case)
    found = []
    for path in sorted(root.glob("*/summary.json")) if root.is_dir() else []:
        try:
            st = path.stat()
            cached = _SUMMARY_CACHE.get(path)
            if cached is None or cached[:2] != (st.st_mtime_ns, st.st_size):
                cached = (st.st_mtime_ns, st.st_size, json.loads(path.read_text()))
                _SUMMARY_CACHE[path] = cached
            found.append(cached[2])
        except (OSError, ValueError):
            log.warning("unreadable run summary %s", path)
    return found


def summaries(use_case: str) -> list[dict]:
    """Every run summary of the use case (read once per page and handed to the functions below)."""
    return _summaries(use_case)


def dataset_runs(use_case: str, found: list[dict] | None = None) -> dict[str, list[str]]:
    """snapshot id -> the dataset DAG runs whose `snapshot` task wrote (or found) it."""
    runs: dict[str, list[str]] = {}
    for s in _summaries(use_case) if found is None else found:
        sid = (s.get("snapshot") or {}).get("snapshot_id")
        if sid and s.get("dag_run_id"):
            runs.setdefault(sid, []).append(s["dag_run_id"])
    return runs


def snapshots(cfg: UseCaseConfig, found: list[dict] | None = None) -> list[dict]:
    """Every complete snapshot, newest first: id, partition, rows, validation outcome, parents, dataset runs."""
    from llmops.data.snapshots.handle import Snapshots

    runs = dataset_runs(cfg.name, found)
    out = []
    for m in reversed(Snapshots.of(cfg).manifests()):
        v = m.get("validation") or {}
        out.append({"snapshot_id": m["snapshot_id"], "created_at": m.get("created_at"),
                    "partition_key": m.get("partition_key"), "interval": m.get("interval"), "rows": m.get("rows"),
                    "validation": {"success": v.get("success"), "suite": v.get("suite"),
                                   "successful": v.get("successful"), "evaluated": v.get("evaluated")},
                    "parents": m.get("parents") or [], "uri": m.get("uri"), "source": m.get("source") or {},
                    "dag_runs": runs.get(m["snapshot_id"], [])})
    return out


def preference_snapshots(cfg: UseCaseConfig) -> list[dict]:
    """The use case's preference snapshots (the feedback DAG writes one per day with enough feedback), newest
    first, read from their manifests through their own handle: id, day, rows per split, validation outcome."""
    from llmops.data.preferences import preference_snapshots as handle

    out = []
    for m in reversed(handle(cfg).manifests()):
        v = m.get("validation") or {}
        out.append({"snapshot_id": m["snapshot_id"], "created_at": m.get("created_at"),
                    "partition_key": m.get("partition_key"), "rows": m.get("rows"),
                    "validation": {"success": v.get("success")}})
    return out


def snapshot(cfg: UseCaseConfig, snapshot_id: str) -> dict:
    from llmops.data.snapshots.handle import Snapshots

    return Snapshots.of(cfg).manifest(snapshot_id)  # the id is checked by the route


def _gate(c, run_id: str | None) -> dict:
    if not run_id:
        return {}
    tags = c.get_run(run_id).data.tags
    try:
        reasons = json.loads(tags.get("gate.reasons") or "[]")
    except ValueError:
        reasons = [tags["gate.reasons"]]
    return {"decision": tags.get("gate.decision"), "rules": reasons, "report": tags.get("eval.report")}


def _gates_from_summaries(use_case: str | None, found: list[dict] | None = None) -> dict[str, dict]:
    """dag_run_id -> the gate as the run summary recorded it (one folder read per run, no MLflow call)."""
    out = {}
    for s in (_summaries(use_case) if found is None else found) if use_case else []:
        gate = s.get("gate")
        if gate and s.get("dag_run_id") and gate.get("passed") is not None:
            out[s["dag_run_id"]] = {"decision": "PASSED" if gate["passed"] else "REJECTED",
                                    "rules": gate.get("reasons") or [r.get("reason") for r in gate.get("rules") or []],
                                    "report": gate.get("report_artifact") or gate.get("report")}
    return out


def versions(model_name: str, use_case: str | None = None, found: list[dict] | None = None) -> list[dict]:
    """Every registered version, newest first: aliases, gate decision and rules, snapshot, base model, DAG run.
    With ``use_case`` the gate comes from the run summaries of its DAG runs (fast: one MLflow search in all);
    a version whose run left no summary has it read from its MLflow run's ``gate.*`` tags."""
    from mlflow.exceptions import MlflowException

    from llmops.tracking import client

    c = client()
    try:
        model = c.get_registered_model(model_name)
    except MlflowException:
        return []
    aliases: dict[str, list[str]] = {}
    for alias, version in (model.aliases or {}).items():
        aliases.setdefault(str(version), []).append(alias)
    gates = _gates_from_summaries(use_case, found)
    out = []
    for mv in sorted(c.search_model_versions(f"name = '{model_name}'"), key=lambda v: -int(v.version)):
        tags = dict(mv.tags)
        gate = gates.get(tags.get("dag_run_id") or "")
        out.append({"version": str(mv.version), "aliases": sorted(aliases.get(str(mv.version), [])),
                    "snapshot_id": tags.get("snapshot_id"), "dag_run_id": tags.get("dag_run_id"),
                    "base_model": tags.get("base_model"), "base_model_revision": tags.get("base_model_revision"),
                    "metrics": {k.removeprefix("metric."): v for k, v in tags.items() if k.startswith("metric.")},
                    "gate": gate if gate is not None else _gate(c, mv.run_id), "mlflow_run_id": mv.run_id,
                    "created_at": mv.creation_timestamp})
    return out


def one_version(cfg: UseCaseConfig, version: str) -> dict | None:
    """One registered version, as :func:`versions` shows it, without listing the others (None: no such version)."""
    from mlflow.exceptions import MlflowException

    from llmops.tracking import client

    c = client()
    try:
        mv = c.get_model_version(cfg.model_name, str(version))
        model = c.get_registered_model(cfg.model_name)
    except MlflowException:
        return None
    tags = dict(mv.tags)
    gate = None
    summary = run_summary(cfg.name, tags["dag_run_id"]) if tags.get("dag_run_id") else None
    if summary and (summary.get("gate") or {}).get("passed") is not None:
        g = summary["gate"]
        gate = {"decision": "PASSED" if g["passed"] else "REJECTED",
                "rules": g.get("reasons") or [r.get("reason") for r in g.get("rules") or []],
                "report": g.get("report_artifact") or g.get("report")}
    return {"version": str(mv.version),
            "aliases": sorted(a for a, v in (model.aliases or {}).items() if str(v) == str(mv.version)),
            "snapshot_id": tags.get("snapshot_id"), "dag_run_id": tags.get("dag_run_id"),
            "base_model": tags.get("base_model"), "base_model_revision": tags.get("base_model_revision"),
            "metrics": {k.removeprefix("metric."): v for k, v in tags.items() if k.startswith("metric.")},
            "gate": gate if gate is not None else _gate(c, mv.run_id), "mlflow_run_id": mv.run_id,
            "created_at": mv.creation_timestamp}


def chain(cfg: UseCaseConfig, version: str) -> dict | None:
    """source -> snapshot (and its parents) -> dataset DAG run -> finetune DAG run -> model version."""
    v = one_version(cfg, version)
    if v is None:
        return None
    snaps = {s["snapshot_id"]: s for s in snapshots(cfg)}
    snap = snaps.get(v["snapshot_id"])
    return {"version": v, "snapshot": snap,
            "parents": [snaps[p] for p in (snap or {}).get("parents", []) if p in snaps]}


# --- what the plots read: run folders (summary, decision.json, eval results), MLflow metric histories, monitoring ---

def run_summary(use_case: str, run_id: str) -> dict | None:
    """The DAG run's ``summary.json`` (None when the run wrote none)."""
    path = paths.run_dir(use_case, run_id) / "summary.json"
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        log.warning("unreadable run summary %s", path)
        return None


def gate_runs(use_case: str, limit: int = 50, found: list[dict] | None = None) -> list[dict]:
    """The newest ``limit`` DAG runs that reached the gate: run id, verdict, the version it registered."""
    out = []
    for s in _summaries(use_case) if found is None else found:
        gate = s.get("gate")
        if gate:
            out.append({"dag_run_id": s.get("dag_run_id"), "passed": gate.get("passed"),
                        "winner": gate.get("winner"), "version": (s.get("register") or {}).get("version"),
                        "reasons": gate.get("reasons") or []})
    return sorted(out, key=lambda r: str(r["dag_run_id"]), reverse=True)[:limit]


def decision(summary: dict | None) -> dict | None:
    """The gate's ``decision.json`` (with the judge's figures and a sweep's trials), next to the report the run
    summary names; the summary's own gate entry when that file is gone."""
    gate = (summary or {}).get("gate")
    if not gate:
        return None
    report = gate.get("report")
    if report:
        path = Path(report).parent / "decision.json"
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            pass
        except (OSError, ValueError):
            log.warning("unreadable gate decision %s", path)
    return gate


def trained_runs(summary: dict | None) -> dict[str, str]:
    """label -> MLflow run id of each training in a DAG run: ``finetune``, or one ``finetune[<trial>]`` per trial."""
    out = {}
    for step, data in (summary or {}).items():
        trained = isinstance(data, dict) and data.get("mlflow_run_id")
        if (step == "finetune" or step.startswith("finetune[")) and trained:
            out[step.removeprefix("finetune[").removesuffix("]") if step != "finetune" else "finetune"] = \
                data["mlflow_run_id"]
    return out


LOSS_METRICS = ("train_loss", "train_eval_loss")


def loss_histories(runs: dict[str, str]) -> dict[str, dict[str, list]]:
    """label -> {metric: [(step, value)]} for the training and eval loss MLflow recorded per step."""
    from llmops.tracking import client

    c = client()
    return {label: {m: [(h.step, h.value) for h in c.get_metric_history(run_id, m)] for m in LOSS_METRICS}
            for label, run_id in runs.items()}


@lru_cache(maxsize=256)
def _intervals(path: str, _mtime_ns: int, metrics: tuple[str, ...]) -> dict[str, tuple]:
    """metric -> (low, high) of the challenger's per-example mean in one results file (cached per file version)."""
    from llmops.view.plots import mean_interval

    try:
        results = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    per_example = ((results.get("candidates") or {}).get("challenger") or {}).get("per_example") or {}
    out = {}
    for m in metrics:
        ci = mean_interval(per_example.get(m) or [])
        if ci:
            out[m] = (ci[1], ci[2])
    return out


def version_intervals(use_case: str, versions: list[dict], metrics: list[str]) -> dict[str, dict[str, tuple]]:
    """version -> {metric: (low, high)}: 95% intervals of the challenger's per-example scores in the evaluation
    results of the DAG run that registered it (``<run dir>/eval/results.json``), where that file has them."""
    out: dict[str, dict[str, tuple]] = {}
    for v in versions:
        if not v.get("dag_run_id"):
            continue
        path = paths.run_dir(use_case, v["dag_run_id"]) / "eval" / "results.json"
        try:
            found = _intervals(str(path), path.stat().st_mtime_ns, tuple(metrics))
        except OSError:
            continue
        if found:
            out[v["version"]] = found
    return out


def serving_days(use_case: str) -> list[dict]:
    """Each day's serving figures from the monitoring reports (``<LLMOPS_HOME>/monitoring/<use case>/<day>/
    figures.json``), with the breaches that day crossed."""
    root = paths.llmops_home() / "monitoring" / use_case
    out = []
    for path in sorted(root.glob("*/figures.json")) if root.is_dir() else []:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            log.warning("unreadable monitoring figures %s", path)
            continue
        out.append({"day": data.get("day") or path.parent.name, **(data.get("figures") or {}),
                    "breaches": data.get("breaches") or []})
    return out


def serving_thresholds(cfg: UseCaseConfig) -> dict[str, tuple[float, str]]:
    """metric -> (limit, "max" | "min") from ``serving.monitoring``, for the limits that are set."""
    from llmops.monitoring.checks import LIMITS

    mon = cfg.serving.monitoring
    return {metric: (getattr(mon, field), kind) for metric, field, kind in LIMITS
            if getattr(mon, field, None) is not None}


def feedback_records(use_case: str) -> list[dict]:
    """Every feedback line the serving API stored (``<LLMOPS_HOME>/serving_logs/<use case>/feedback/<day>.jsonl``),
    read as is; a torn or unreadable line is skipped."""
    root = paths.llmops_home() / "serving_logs" / use_case / "feedback"
    out = []
    for path in sorted(root.glob("*.jsonl")) if root.is_dir() else []:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            log.warning("unreadable feedback log %s", path)
            continue
        for line in lines:
            try:
                record = json.loads(line)
            except ValueError:
                continue  # a torn last line
            if isinstance(record, dict):
                out.append({**record, "day": str(record.get("ts") or path.stem)[:10]})
    return out
