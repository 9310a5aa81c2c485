"""The index DAG's lineage: corpus source -> corpus snapshot -> index version (-> its evaluation and ``live``).

Plain data from the index DAG's payloads (:mod:`llmops.payloads`), as :mod:`llmops.lineage.steps` does for the
other DAGs, with the same naming:

- ``corpus`` reads the corpus source (its files, tables or Hub dataset, from the snapshot manifest's lineage
  record) and writes the corpus snapshot (``file`` + its folder, versioned by the snapshot id);
- ``build`` reads the corpus snapshot and the embedding model and writes the index version: its folder (passages,
  BM25, manifest; versioned by the index id) and, on pgvector, its table (namespace ``postgres://host:port``, name
  ``database.schema.table``, the OpenLineage naming for PostgreSQL);
- ``evaluate`` reads the version and the labelled questions and writes the evaluation beside the versions;
- ``gate`` reads the candidate's evaluation (and the live one's);
- ``publish`` reads the version and writes the ``live`` pointer (versioned by the index id it names).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from llmops.lineage import naming
from llmops.lineage.steps import Ref, StepOutputs, snapshot_ref
from llmops.payloads import CorpusSnapshot, IndexBuilt, IndexDecision, IndexPublished, RetrievalEvaluated

CORPUS_SCHEMA = {"prompt": "string (document key)", "response": "string (document text)"}
CHUNKS_SCHEMA = {"chunk_id": "string", "doc_key": "string", "source": "string", "start": "int64", "end": "int64",
                 "text": "string", "text_sha": "string"}


def embedding_model(ref: str) -> tuple[str, str]:
    """A ``pkg:`` model is named by its package path (namespace ``pypi``); a folder or hub id as a base model."""
    if ref.startswith("pkg:"):
        return "pypi", ref.removeprefix("pkg:")
    return naming.base_model(ref)


def pg_table(url: str, schema: str, table: str) -> tuple[str, str]:
    """(``postgres://host:port``, ``database.schema.table``): credentials never kept."""
    parts = urlsplit(url)
    database = parts.path.lstrip("/") or "postgres"
    return f"postgres://{parts.hostname or 'localhost'}:{parts.port or 5432}", f"{database}.{schema}.{table}"


def corpus_inputs(manifest: dict | None = None) -> list[Ref]:
    """The source datasets the corpus snapshot was read from: known from the result (its manifest) only."""
    if manifest is None:
        return []
    return [Ref.of(d) for d in naming.source_datasets(manifest.get("source") or {})]


def corpus_outputs(snapshot: CorpusSnapshot, uri: str, manifest: dict | None = None) -> StepOutputs:
    manifest = manifest or {}
    validation = manifest.get("validation") or {}
    out = snapshot_ref(uri, snapshot.snapshot_id, schema=CORPUS_SCHEMA, rows=snapshot.documents,
                       properties={"snapshot_id": snapshot.snapshot_id, "kind": "corpus",
                                   "validation_success": validation.get("success")})
    return StepOutputs([out], run={"corpus_snapshot_id": snapshot.snapshot_id})


def build_inputs(snapshot: CorpusSnapshot, snapshot_uri: str, embedding_ref: str) -> list[Ref]:
    return [snapshot_ref(snapshot_uri, snapshot.snapshot_id), Ref.of(embedding_model(embedding_ref))]


def version_ref(folder: str, index_id: str, **kwargs) -> Ref:
    return Ref.of(naming.from_uri(folder), version=index_id, **kwargs)


def build_outputs(built: IndexBuilt, folder: str, manifest: dict, table: tuple[str, str] | None = None
                  ) -> StepOutputs:
    props = {"index_id": built.index_id, "corpus_snapshot_id": built.snapshot_id, "backend": manifest.get("backend"),
             "chunking": manifest.get("chunking"), "retriever": manifest.get("retriever"),
             "embedding": {k: (manifest.get("embedding") or {}).get(k) for k in ("ref", "digest", "dimension")},
             "embedded": built.embedded, "reused": built.reused}
    outputs = [version_ref(folder, built.index_id, schema=CHUNKS_SCHEMA, rows=built.chunks, properties=props)]
    if table is not None:
        dim = (manifest.get("embedding") or {}).get("dimension")
        outputs.append(Ref.of(table, version=built.index_id, rows=built.chunks,
                              schema={"row": "int4", "embedding": f"vector({dim})"},
                              properties={"index_id": built.index_id,
                                          "hnsw": {k: (manifest.get("pgvector") or {}).get(k)
                                                   for k in ("m", "ef_construction")}}))
    return StepOutputs(outputs, run={"index_id": built.index_id, "written": built.written,
                                     "embedded": built.embedded, "reused": built.reused})


def evaluate_inputs(built: IndexBuilt, folder: str, questions: str) -> list[Ref]:
    return [version_ref(folder, built.index_id), Ref.of(naming.from_uri(questions))]


def evaluate_outputs(evaluated: RetrievalEvaluated, evaluation_path: str) -> StepOutputs:
    out = Ref.of(naming.from_uri(evaluation_path), version=evaluated.index_id,
                 properties={"index_id": evaluated.index_id, "metrics": evaluated.metrics})
    return StepOutputs([out], run={"mlflow_run_id": evaluated.mlflow_run_id})


def gate_inputs(evaluated: RetrievalEvaluated, evaluation_path: str, live_evaluation: str | None = None
                ) -> list[Ref]:
    inputs = [Ref.of(naming.from_uri(evaluation_path), version=evaluated.index_id)]
    return inputs + ([Ref.of(naming.from_uri(live_evaluation))] if live_evaluation else [])


def gate_outputs(decision: IndexDecision) -> StepOutputs:
    verdict = {"index_id": decision.index_id, "passed": decision.passed, "live": decision.live,
               "reasons": decision.reasons}
    return StepOutputs([], run={"gate": verdict})


def publish_inputs(decision: IndexDecision, folder: str) -> list[Ref]:
    return [version_ref(folder, decision.index_id)]


def publish_outputs(published: IndexPublished, pointer: str) -> StepOutputs:
    out = Ref.of(naming.from_uri(pointer), version=published.index_id,
                 properties={"alias": "live", "index_id": published.index_id, "moved": published.moved,
                             "previous": published.previous})
    return StepOutputs([out], run={"index_id": published.index_id, "moved": published.moved})
