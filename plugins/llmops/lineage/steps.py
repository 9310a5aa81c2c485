"""What each pipeline step read and wrote, from its XCom payload and the operator's inputs: plain data.

Every step names a dataset the same way on both sides (the staged rows of ``ingest`` are the input of
``validate`` and ``snapshot``; the snapshot is the output of ``snapshot`` and the input of ``finetune``,
``evaluate`` and ``register``...), so a lineage tool joins the events into one graph.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from llmops.lineage import naming

STAGED_SCHEMA = {"prompt": "string", "response": "string", "source_file": "string", "source_line": "int64"}


@dataclass
class Ref:
    """One dataset: its identifier and what we know about it (each becomes an OpenLineage facet)."""

    namespace: str
    name: str
    schema: dict[str, str] | None = None
    rows: int | None = None
    version: str | None = None
    assertions: list[dict] | None = None
    properties: dict = field(default_factory=dict)

    @classmethod
    def of(cls, pair: tuple[str, str], **kwargs) -> Ref:
        return cls(pair[0], pair[1], **kwargs)


@dataclass
class StepLineage:
    inputs: list[Ref]
    outputs: list[Ref]
    run: dict = field(default_factory=dict)
    sql: str | None = None


def snapshot_ref(uri: str, snapshot_id: str, **kwargs) -> Ref:
    return Ref.of(naming.from_uri(uri), version=snapshot_id, **kwargs)


def ingest(payload: dict) -> StepLineage:
    source = payload.get("source") or {}
    inputs = [Ref.of(d) for d in naming.source_datasets(source)]
    staged = Ref.of(naming.from_uri(payload["uri"]), schema=STAGED_SCHEMA, rows=payload.get("rows"),
                    properties={"partition_key": payload.get("partition_key"), "interval": payload.get("interval"),
                                "steps": payload.get("steps")})
    run = {"source_kind": source.get("kind"), "parameters": source.get("parameters")}
    return StepLineage(inputs, [staged], run=run, sql=source.get("query"))


def suite_assertions(summary: dict) -> list[dict]:
    """One assertion per expectation of the suite that ran, with its outcome (a `mostly` pass is a success)."""
    failed = {json.dumps([f["expectation"], f["kwargs"]], sort_keys=True, default=str)
              for f in summary.get("failed") or []}
    path = summary.get("suite_path")
    expectations = json.loads(Path(path).read_text()).get("expectations", []) if path and Path(path).exists() else []
    out = []
    for e in expectations:
        kwargs = e.get("kwargs") or {}
        key = json.dumps([e.get("type"), kwargs], sort_keys=True, default=str)
        out.append({"assertion": e.get("type"), "success": key not in failed, "column": kwargs.get("column")})
    return out


def validate(payload: dict, ingested: dict) -> StepLineage:
    staged = Ref.of(naming.from_uri(ingested["uri"]), rows=payload.get("rows"), assertions=suite_assertions(payload),
                    properties={"suite": payload.get("suite"), "success": payload.get("success"),
                                "evaluated": payload.get("evaluated"), "successful": payload.get("successful"),
                                "warnings": len(payload.get("warnings") or [])})
    outputs = [Ref.of(naming.from_uri(payload["report"]))] if payload.get("report") else []
    return StepLineage([staged], outputs, run={"validation_success": payload.get("success")})


def snapshot(payload: dict, ingested: dict, manifest: dict | None = None) -> StepLineage:
    manifest = manifest or {}
    rows = payload.get("rows") or {}
    out = snapshot_ref(payload["uri"], payload["snapshot_id"], schema=manifest.get("columns"),
                       rows=int(rows.get("train", 0)) + int(rows.get("eval", 0)),
                       properties={"snapshot_id": payload["snapshot_id"], "rows": rows,
                                   "partition_key": payload.get("partition_key"), "interval": payload.get("interval"),
                                   "parents": manifest.get("parents"),
                                   "validation_success": (manifest.get("validation") or {}).get("success")})
    return StepLineage([Ref.of(naming.from_uri(ingested["uri"]))], [out], run={"snapshot_id": payload["snapshot_id"]})


def finetune(payload: dict, snapshot_uri: str, registry_uri: str) -> StepLineage:
    inputs = [snapshot_ref(snapshot_uri, payload["snapshot_id"]), Ref.of(naming.base_model(payload["base_model"]))]
    adapter = Ref.of(naming.from_uri(payload["adapter_dir"]),
                     properties={"snapshot_id": payload["snapshot_id"], "base_model": payload["base_model"],
                                 "mlflow_run_id": payload.get("mlflow_run_id")})
    run = {"mlflow_run_id": payload.get("mlflow_run_id"), "tracking_uri": naming.redact_uri(registry_uri),
           "snapshot_reason": payload.get("snapshot_reason"), "train_loss": payload.get("train_loss")}
    return StepLineage(inputs, [adapter], run=run)


def evaluate(payload: dict, trained: dict, snapshot_uri: str, registry_uri: str, model_name: str) -> StepLineage:
    inputs = [snapshot_ref(snapshot_uri, trained["snapshot_id"], properties={"split": "eval"}),
              Ref.of(naming.from_uri(trained["adapter_dir"]))]
    if payload.get("champion_version"):
        inputs.append(Ref.of(naming.model_version(registry_uri, model_name, payload["champion_version"])))
    metrics = payload.get("metrics") or {}
    rows = payload.get("rows") or {}  # rows per eval set: {"eval": n, "golden": m}
    results = Ref.of(naming.from_uri(payload["results"]), rows=rows.get("eval"),
                     properties={"metrics": metrics.get("challenger"), "rows": rows})
    return StepLineage(inputs, [results], run={"mlflow_run_id": trained.get("mlflow_run_id"),
                                               "champion_version": payload.get("champion_version")})


def gate(payload: dict, evaluation: dict) -> StepLineage:
    decision = {"passed": payload.get("passed"), "reference": payload.get("reference"),
                "rules": [{"rule": r.get("reason"), "passed": r.get("passed")} for r in payload.get("rules") or []]}
    report = Path(payload["report"]).parent / "decision.json" if payload.get("report") else None
    outputs = [Ref.of(naming.from_uri(str(report)), properties=decision)] if report else []
    return StepLineage([Ref.of(naming.from_uri(evaluation["results"]))], outputs, run={"gate": decision})


def register(payload: dict, trained: dict, snapshot_uri: str, registry_uri: str) -> StepLineage:
    inputs = [snapshot_ref(snapshot_uri, trained["snapshot_id"]), Ref.of(naming.base_model(trained["base_model"])),
              Ref.of(naming.from_uri(trained["adapter_dir"]))]
    version = Ref.of(naming.model_version(registry_uri, payload["name"], payload["version"]),
                     version=str(payload["version"]),
                     properties={"model": payload["name"], "version": str(payload["version"]),
                                 "aliases": payload.get("aliases"), "snapshot_id": trained["snapshot_id"],
                                 "base_model": trained["base_model"], "mlflow_run_id": trained.get("mlflow_run_id")})
    return StepLineage(inputs, [version], run={"model": payload["name"], "version": str(payload["version"])})


def rollback(payload: dict, registry_uri: str) -> StepLineage:
    inputs = []
    if payload.get("from_version"):
        inputs.append(Ref.of(naming.model_version(registry_uri, payload["name"], payload["from_version"])))
    target = Ref.of(naming.model_version(registry_uri, payload["name"], payload["version"]),
                    version=str(payload["version"]), properties={"alias": "champion", "moved": payload.get("moved")})
    return StepLineage(inputs, [target], run={"from_version": payload.get("from_version")})


def batch_predict(payload: dict, registry_uri: str) -> StepLineage:
    inputs = [Ref.of(naming.model_version(registry_uri, payload["model_name"], payload["model_version"]))]
    inputs += [Ref.of(naming.from_uri(f)) for f in payload.get("input_files") or []]
    out = Ref.of(naming.from_uri(payload["uri"]), rows=payload.get("rows"),
                 properties={"blocked": payload.get("blocked"), "model_version": payload["model_version"]})
    return StepLineage(inputs, [out])
