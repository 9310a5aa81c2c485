"""What each pipeline step read and wrote, from the typed payloads (:mod:`llmops.payloads`): plain data.

Two builders per step. ``<step>_inputs`` takes the upstream payloads, known before the step runs (the START
event), and optionally the step's own result, which adds what only the run finds out (the files an ingest
listed, the champion an evaluation compared, the assertions of a validation); ``<step>_outputs`` takes the
result (the COMPLETE event). Every step names a dataset the same way on both sides (the staged rows of
``ingest`` are the input of ``validate`` and ``snapshot``; the snapshot is the output of ``snapshot`` and the
input of ``finetune``, ``evaluate`` and ``register``...), so a lineage tool joins the events into one graph.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from llmops.lineage import naming
from llmops.payloads import (
    Decision,
    Evaluation,
    Predictions,
    Preferences,
    Registered,
    RolledBack,
    Snapshot,
    Staged,
    Trained,
    Validation,
)

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
class StepOutputs:
    """What a step wrote, with its run facts (and the query it ran, for a BigQuery ingest)."""

    outputs: list[Ref]
    run: dict = field(default_factory=dict)
    sql: str | None = None


@dataclass
class StepLineage:
    inputs: list[Ref]
    outputs: list[Ref]
    run: dict = field(default_factory=dict)
    sql: str | None = None

    @classmethod
    def of(cls, inputs: list[Ref], out: StepOutputs | None = None) -> StepLineage:
        """The START lineage (inputs only) or, with the step's outputs, the COMPLETE one."""
        if out is None:
            return cls(inputs, [])
        return cls(inputs, out.outputs, run=out.run, sql=out.sql)


def snapshot_ref(uri: str, snapshot_id: str, **kwargs) -> Ref:
    return Ref.of(naming.from_uri(uri), version=snapshot_id, **kwargs)


def ingest_inputs(staged: Staged | None = None) -> list[Ref]:
    """The source datasets read: known from the result only (which files a glob matched, the query's tables)."""
    if staged is None:
        return []
    return [Ref.of(d) for d in naming.source_datasets(staged.source or {})]


def ingest_outputs(staged: Staged) -> StepOutputs:
    source = staged.source or {}
    out = Ref.of(naming.from_uri(staged.uri), schema=STAGED_SCHEMA, rows=staged.rows,
                 properties={"partition_key": staged.partition_key, "interval": staged.interval,
                             "steps": staged.steps})
    return StepOutputs([out], run={"source_kind": source.get("kind"), "parameters": source.get("parameters")},
                       sql=source.get("query"))


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


def validate_inputs(staged: Staged, validation: Validation | None = None) -> list[Ref]:
    """The staged rows; with the result, their row count, the suite's assertions and its outcome."""
    if validation is None:
        return [Ref.of(naming.from_uri(staged.uri))]
    summary = validation.to_xcom()
    return [Ref.of(naming.from_uri(staged.uri), rows=summary.get("rows"), assertions=suite_assertions(summary),
                   properties={"suite": summary.get("suite"), "success": validation.success,
                               "evaluated": summary.get("evaluated"), "successful": summary.get("successful"),
                               "warnings": len(summary.get("warnings") or [])})]


def validate_outputs(validation: Validation) -> StepOutputs:
    outputs = [Ref.of(naming.from_uri(validation.report))] if validation.report else []
    return StepOutputs(outputs, run={"validation_success": validation.success})


def snapshot_inputs(staged: Staged) -> list[Ref]:
    return [Ref.of(naming.from_uri(staged.uri))]


def _written_snapshot(snap: Snapshot | Preferences, snapshot_id: str, manifest: dict | None, **properties) -> Ref:
    """A snapshot a step wrote: its columns, rows, partition, parents and validation outcome (from its manifest)."""
    manifest = manifest or {}
    rows = snap.rows or {}
    return snapshot_ref(snap.uri, snapshot_id, schema=manifest.get("columns"),
                        rows=int(rows.get("train", 0)) + int(rows.get("eval", 0)),
                        properties={"snapshot_id": snapshot_id, "rows": rows,
                                    "partition_key": snap.partition_key, "interval": snap.interval,
                                    "parents": manifest.get("parents"),
                                    "validation_success": (manifest.get("validation") or {}).get("success"),
                                    **properties})


def snapshot_outputs(snap: Snapshot, manifest: dict | None = None) -> StepOutputs:
    return StepOutputs([_written_snapshot(snap, snap.snapshot_id, manifest)], run={"snapshot_id": snap.snapshot_id})


def preferences_inputs(prefs: Preferences | None = None) -> list[Ref]:
    """The prediction logs and feedback file the feedback DAG's ``preferences`` task read, and the dataset
    snapshot whose eval prompts it held out: known from the result only (which files exist, which snapshot the
    champion names)."""
    if prefs is None:
        return []
    inputs = [Ref.of(naming.from_uri(p)) for p in prefs.inputs or []]
    if prefs.eval_snapshot_id and prefs.eval_snapshot_uri:
        inputs.append(snapshot_ref(prefs.eval_snapshot_uri, prefs.eval_snapshot_id, properties={"split": "eval"}))
    return inputs


def preferences_outputs(prefs: Preferences, manifest: dict | None = None) -> StepOutputs:
    """The preference snapshot written (or found already written), with its counts."""
    out = _written_snapshot(prefs, prefs.preference_snapshot_id, manifest, kind="preferences", counts=prefs.counts,
                            model_versions=prefs.model_versions)
    return StepOutputs([out], run={"preference_snapshot_id": prefs.preference_snapshot_id, "counts": prefs.counts})


def finetune_inputs(trained: Trained | None = None, snapshot_uri: str | None = None) -> list[Ref]:
    """The snapshot and the base model, and for a preference run the preference snapshot it trained on: the run
    decides which (a pin, the triggering event, the newest), so they are known from the result only."""
    if trained is None:
        return []
    inputs = [snapshot_ref(snapshot_uri, trained.snapshot_id), Ref.of(naming.base_model(trained.base_model))]
    prefs, prefs_uri = trained.details.get("preference_snapshot_id"), trained.details.get("preference_snapshot_uri")
    if prefs and prefs_uri:
        inputs.append(snapshot_ref(prefs_uri, prefs, properties={"split": "train"}))
    return inputs


def finetune_outputs(trained: Trained, registry_uri: str) -> StepOutputs:
    adapter = Ref.of(naming.from_uri(trained.adapter_dir),
                     properties={"snapshot_id": trained.snapshot_id, "base_model": trained.base_model,
                                 "mlflow_run_id": trained.mlflow_run_id})
    run = {"mlflow_run_id": trained.mlflow_run_id, "tracking_uri": naming.redact_uri(registry_uri),
           "snapshot_reason": trained.snapshot_reason, "train_loss": trained.details.get("train_loss")}
    return StepOutputs([adapter], run=run)


def evaluate_inputs(trained: Trained, snapshot_uri: str, registry_uri: str, model_name: str,
                    evaluation: Evaluation | None = None) -> list[Ref]:
    """The eval split and the new adapter; with the result, the champion version it was compared with."""
    inputs = [snapshot_ref(snapshot_uri, trained.snapshot_id, properties={"split": "eval"}),
              Ref.of(naming.from_uri(trained.adapter_dir))]
    if evaluation is not None and evaluation.champion_version:
        inputs.append(Ref.of(naming.model_version(registry_uri, model_name, evaluation.champion_version)))
    return inputs


def evaluate_outputs(evaluation: Evaluation, trained: Trained) -> StepOutputs:
    metrics = evaluation.metrics or {}
    rows = evaluation.rows or {}  # rows per eval set: {"eval": n, "golden": m}
    results = Ref.of(naming.from_uri(evaluation.results), rows=rows.get("eval"),
                     properties={"metrics": metrics.get("challenger"), "rows": rows})
    return StepOutputs([results], run={"mlflow_run_id": trained.mlflow_run_id,
                                       "champion_version": evaluation.champion_version})


def gate_inputs(evaluation: Evaluation) -> list[Ref]:
    return [Ref.of(naming.from_uri(evaluation.results))]


def gate_outputs(decision: Decision) -> StepOutputs:
    verdict = {"passed": decision.passed, "reference": decision.reference,
               "rules": [{"rule": r.get("reason"), "passed": r.get("passed")} for r in decision.rules or []]}
    report = Path(decision.report).parent / "decision.json" if decision.report else None
    outputs = [Ref.of(naming.from_uri(str(report)), properties=verdict)] if report else []
    return StepOutputs(outputs, run={"gate": verdict})


def register_inputs(trained: Trained, snapshot_uri: str) -> list[Ref]:
    return [snapshot_ref(snapshot_uri, trained.snapshot_id), Ref.of(naming.base_model(trained.base_model)),
            Ref.of(naming.from_uri(trained.adapter_dir))]


def register_outputs(registered: Registered, trained: Trained, registry_uri: str) -> StepOutputs:
    version = Ref.of(naming.model_version(registry_uri, registered.name, registered.version),
                     version=str(registered.version),
                     properties={"model": registered.name, "version": str(registered.version),
                                 "aliases": registered.aliases, "snapshot_id": trained.snapshot_id,
                                 "base_model": trained.base_model, "mlflow_run_id": trained.mlflow_run_id})
    return StepOutputs([version], run={"model": registered.name, "version": str(registered.version)})


def rollback_inputs(rolled: RolledBack | None, registry_uri: str) -> list[Ref]:
    """The champion moved away from: known from the result only."""
    if rolled is None or not rolled.from_version:
        return []
    return [Ref.of(naming.model_version(registry_uri, rolled.name, rolled.from_version))]


def rollback_outputs(rolled: RolledBack, registry_uri: str) -> StepOutputs:
    target = Ref.of(naming.model_version(registry_uri, rolled.name, rolled.version),
                    version=str(rolled.version), properties={"alias": "champion", "moved": rolled.moved})
    return StepOutputs([target], run={"from_version": rolled.from_version})


def batch_predict_inputs(predictions: Predictions | None, registry_uri: str) -> list[Ref]:
    """The champion version and the input files: known from the result only."""
    if predictions is None:
        return []
    inputs = [Ref.of(naming.model_version(registry_uri, predictions.model_name, predictions.model_version))]
    return inputs + [Ref.of(naming.from_uri(f)) for f in predictions.input_files or []]


def batch_predict_outputs(predictions: Predictions) -> StepOutputs:
    out = Ref.of(naming.from_uri(predictions.uri), rows=predictions.rows,
                 properties={"blocked": predictions.blocked, "model_version": predictions.model_version})
    return StepOutputs([out])
