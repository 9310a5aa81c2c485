"""What the view shows, read from snapshot manifests, run summaries and the MLflow registry. Writes nothing. The
use case's config comes from the route, loaded once per request: nothing here reads its YAML again."""

from __future__ import annotations

import json
import logging
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


def _summaries(use_case: str) -> list[dict]:
    root = paths.runs_root(use_case)
    found = []
    for path in sorted(root.glob("*/summary.json")) if root.is_dir() else []:
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            log.warning("unreadable run summary %s", path)
    return found


def dataset_runs(use_case: str) -> dict[str, list[str]]:
    """snapshot id -> the dataset DAG runs whose `snapshot` task wrote (or found) it."""
    runs: dict[str, list[str]] = {}
    for s in _summaries(use_case):
        sid = (s.get("snapshot") or {}).get("snapshot_id")
        if sid and s.get("dag_run_id"):
            runs.setdefault(sid, []).append(s["dag_run_id"])
    return runs


def snapshots(cfg: UseCaseConfig) -> list[dict]:
    """Every complete snapshot, newest first: id, partition, rows, validation outcome, parents, dataset runs."""
    from llmops.data.snapshots.handle import Snapshots

    runs = dataset_runs(cfg.name)
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


def versions(model_name: str) -> list[dict]:
    """Every registered version, newest first: aliases, gate decision and rules, snapshot, base model, DAG run."""
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
    out = []
    for mv in sorted(c.search_model_versions(f"name = '{model_name}'"), key=lambda v: -int(v.version)):
        tags = dict(mv.tags)
        out.append({"version": str(mv.version), "aliases": sorted(aliases.get(str(mv.version), [])),
                    "snapshot_id": tags.get("snapshot_id"), "dag_run_id": tags.get("dag_run_id"),
                    "base_model": tags.get("base_model"), "base_model_revision": tags.get("base_model_revision"),
                    "metrics": {k.removeprefix("metric."): v for k, v in tags.items() if k.startswith("metric.")},
                    "gate": _gate(c, mv.run_id), "mlflow_run_id": mv.run_id,
                    "created_at": mv.creation_timestamp})
    return out


def chain(cfg: UseCaseConfig, version: str) -> dict | None:
    """source -> snapshot (and its parents) -> dataset DAG run -> finetune DAG run -> model version."""
    found = [v for v in versions(cfg.model_name) if v["version"] == str(version)]
    if not found:
        return None
    v = found[0]
    snaps = {s["snapshot_id"]: s for s in snapshots(cfg)}
    snap = snaps.get(v["snapshot_id"])
    return {"version": v, "snapshot": snap,
            "parents": [snaps[p] for p in (snap or {}).get("parents", []) if p in snaps]}
