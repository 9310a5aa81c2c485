"""The `<use_case>__index` DAG end to end with `airflow dags test` on both backends (pgvector through an Airflow
connection), with the OpenLineage provider's file transport: the events read back and the graph walked from the
live pointer to the corpus source file. (A re-run writing nothing is tested on the steps, test_index_steps.py.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from retrieval_cases import QUESTIONS, TOPICS

from llmops.embedded import embedded_env

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[2]
AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _key(d: dict) -> tuple[str, str]:
    return d["namespace"], d["name"]


def _complete(events: list[dict], task: str) -> dict:
    found = [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"].endswith(f".{task}")]
    assert found, f"no COMPLETE event for {task}: {sorted({e['job']['name'] for e in events})}"
    return found[-1]


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory):
    """One migrated Airflow home for the module (each backend's run has its own use case and LLMOps home)."""
    home = tmp_path_factory.mktemp("airflow")
    env = {**embedded_env({"PATH": os.environ["PATH"]}), "AIRFLOW_HOME": str(home)}
    migrated = subprocess.run([AIRFLOW, "db", "migrate"], env=env, capture_output=True, text=True, timeout=600)
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    return home


@pytest.fixture
def index_dag(tmp_path, backend, airflow_home):
    data, use_cases = tmp_path / "data", tmp_path / "use_cases"
    data.mkdir()
    use_cases.mkdir()
    (data / "corpus.jsonl").write_text("".join(json.dumps({"key": k, "text": t}) + "\n" for k, t in TOPICS.items()))
    (data / "questions.jsonl").write_text("".join(json.dumps(q) + "\n" for q in QUESTIONS))
    name = f"dag_rag_{backend['backend']}"
    cfg = yaml.safe_load((ROOT / "include" / "use_cases" / "python_docs_rag.yaml").read_text())
    cfg.update(name=name, tags=["test"])
    cfg["retrieval"].update(chunking={"size": 24, "overlap": 6}, retriever={"kind": "hybrid", "k": 3},
                            questions=str(data / "questions.jsonl"),
                            gate={"rules": [{"metric": "retrieval.recall@3", "min": 0.8}]})
    cfg["retrieval"]["corpus"]["source"]["path"] = str(data / "corpus.jsonl")
    env = embedded_env({"PATH": os.environ["PATH"]})
    env.update(LLMOPS_HOME=str(tmp_path / "home"), LLMOPS_USE_CASES_DIR=str(use_cases),
               LLMOPS_DATA_ROOTS=str(tmp_path), AIRFLOW_HOME=str(airflow_home),
               MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'home' / 'mlflow.db'}",
               HOME=os.environ.get("HOME", str(tmp_path)), AIRFLOW__OPENLINEAGE__TRANSPORT=json.dumps(
                   {"type": "file", "log_file_path": str(tmp_path / "openlineage.jsonl"), "append": True}))
    if backend["backend"] == "pgvector":  # the workers' way: an Airflow connection (here from the environment)
        cfg["retrieval"].update(backend)
        cfg["retrieval"]["pgvector"]["conn_id"] = "llmops_pgvector"
        env["AIRFLOW_CONN_LLMOPS_PGVECTOR"] = os.environ["LLMOPS_PGVECTOR_URL"]
    (use_cases / f"{name}.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    return env, tmp_path, data, name


def _dags_test(env: dict, name: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([AIRFLOW, "dags", "test", f"{name}__index"], env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return proc


def test_the_index_dag_publishes_and_reports_lineage_from_corpus_to_live(index_dag, backend):
    env, tmp_path, data, name = index_dag
    _dags_test(env, name)
    home = Path(env["LLMOPS_HOME"])
    pointer = json.loads((home / "indexes" / name / "live.json").read_text())
    manifest = json.loads((home / "indexes" / name / pointer["index_id"] / "manifest.json").read_text())
    assert manifest["backend"] == backend["backend"] and manifest["counts"]["reused"] == 0

    log = tmp_path / "openlineage.jsonl"
    text = log.read_text()
    events = [json.loads(line) for line in text.splitlines() if line.strip()]
    corpus, build, evaluate, publish = (_complete(events, t) for t in ("corpus", "build", "evaluate", "publish"))
    assert [_key(i) for i in corpus["inputs"]] == [("file", str(data / "corpus.jsonl"))]
    snapshot = corpus["outputs"][0]
    assert snapshot["facets"]["version"]["datasetVersion"] == manifest["corpus_snapshot_id"]
    assert _key(build["inputs"][0]) == _key(snapshot)
    version = build["outputs"][0]
    assert version["facets"]["version"]["datasetVersion"] == pointer["index_id"]
    assert version["outputFacets"]["outputStatistics"]["rowCount"] == manifest["chunks"]
    if backend["backend"] == "pgvector":
        url = env["AIRFLOW_CONN_LLMOPS_PGVECTOR"]
        table = build["outputs"][1]
        assert table["name"].endswith(f"{backend['pgvector']['schema_name']}.{name}__{pointer['index_id']}")
        assert table["namespace"].startswith("postgres://127.0.0.1:")
        assert url.split(":")[2].split("@")[0] not in text  # the password never reaches lineage
    assert _key(evaluate["inputs"][0]) == _key(version)
    assert publish["outputs"][0]["facets"]["version"]["datasetVersion"] == pointer["index_id"]

    # walk back from the live pointer to the corpus source file, through the same identifiers
    produced_by = {_key(o): e for e in events if e["eventType"] == "COMPLETE" for o in e.get("outputs") or []}
    frontier, seen, jobs = [_key(publish["outputs"][0])], set(), set()
    while frontier:
        node = frontier.pop()
        if node in seen:
            continue
        seen.add(node)
        if node in produced_by:
            jobs.add(produced_by[node]["job"]["name"].rsplit(".", 1)[-1])
            frontier += [_key(i) for i in produced_by[node]["inputs"]]
    assert ("file", str(data / "corpus.jsonl")) in seen and {"publish", "build", "corpus"} <= jobs

