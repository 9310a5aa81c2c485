"""OpenLineage from a real `airflow dags test` run: the provider's listener with its file transport, then the
events read back and the graph walked from the registered model version to the source file. The runs are the
session's first dataset and finetune runs of the e2e use case (``qa_champion``, tests/e2e/conftest.py), which the
registration test checks too."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from tests import airflow_db
from tests.e2e.conftest import PROBE_SECRET

pytestmark = pytest.mark.slow
UC = "e2e_qa"


def _events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _complete(events: list[dict], task: str) -> dict:
    found = [e for e in events if e["eventType"] == "COMPLETE" and e["job"]["name"].endswith(f".{task}")]
    assert found, f"no COMPLETE event for {task}: {sorted({e['job']['name'] for e in events})}"
    return found[-1]


def _key(d: dict) -> tuple[str, str]:
    return d["namespace"], d["name"]


def test_lineage_joins_source_to_model_version(airflow, qa_champion):
    cfg = yaml.safe_load((Path(airflow.env["LLMOPS_USE_CASES_DIR"]) / f"{UC}.yaml").read_text())
    log = qa_champion["lineage"]
    text = log.read_text()
    assert PROBE_SECRET not in text
    events = _events(log)
    ingest, validate, snapshot = (_complete(events, t) for t in ("ingest", "validate", "snapshot"))
    finetune, evaluate, gate, register = (_complete(events, t) for t in ("finetune", "evaluate", "gate", "register"))

    # ingest: the source file -> the staged rows
    source = Path(cfg["source"]["path"]).resolve()
    assert [_key(i) for i in ingest["inputs"]] == [("file", str(source))]
    staged = ingest["outputs"][0]
    assert staged["outputFacets"]["outputStatistics"]["rowCount"] == 400
    # validate: every expectation of the suite as a data-quality assertion on the staged rows
    checked = validate["inputs"][0]
    assert _key(checked) == _key(staged)
    assertions = checked["inputFacets"]["dataQualityAssertions"]["assertions"]
    suite = json.loads((Path(__file__).resolve().parents[2] / "include/expectations/qa_pairs.json").read_text())
    assert len(assertions) == len(suite["expectations"]) and all(a["success"] for a in assertions)
    assert {"prompt", "response"} <= {a.get("column") for a in assertions}
    # snapshot: namespace/name of its file:// URI, schema, rows, id
    manifest = json.loads(next((airflow.home / "snapshots" / UC).glob("*/manifest.json")).read_text())
    snap = snapshot["outputs"][0]
    assert Path(snap["name"]).as_uri() == manifest["uri"] and snap["namespace"] == "file"
    assert snap["facets"]["version"]["datasetVersion"] == manifest["snapshot_id"]
    assert {f["name"] for f in snap["facets"]["schema"]["fields"]} >= {"prompt", "response"}
    assert snap["outputFacets"]["outputStatistics"]["rowCount"] == manifest["rows"]["train"] + manifest["rows"]["eval"]
    # register: a dataset naming the registry URI, the model and its version
    version = register["outputs"][0]
    assert version["name"] == f"{UC}-lora/1"
    assert version["namespace"] == airflow.env["MLFLOW_TRACKING_URI"]
    assert version["facets"]["llmops"]["properties"]["aliases"] == ["challenger", "champion"]
    assert finetune["run"]["facets"]["llmops"]["properties"]["mlflow_run_id"]
    assert gate["outputs"][0]["facets"]["llmops"]["properties"]["passed"] is True
    assert _key(evaluate["inputs"][0]) == _key(snap)

    # START events already name what each step reads, where the upstream payload says it before the step runs
    for task, done in (("validate", validate), ("snapshot", snapshot), ("evaluate", evaluate), ("gate", gate),
                       ("register", register)):
        [start] = [e for e in events if e["eventType"] == "START" and e["job"]["name"].endswith(f".{task}")]
        assert [_key(i) for i in start["inputs"]] == [_key(i) for i in done["inputs"]][:len(start["inputs"])]
        assert start["inputs"] and not start.get("outputs"), (task, start)

    # walk the graph backwards: from the model version to the source file, through the same identifiers
    produced_by = {}
    for e in events:
        if e["eventType"] == "COMPLETE":
            for out in e.get("outputs") or []:
                produced_by[_key(out)] = e
    frontier, seen, jobs = [_key(version)], set(), []
    while frontier:
        node = frontier.pop()
        if node in seen:
            continue
        seen.add(node)
        if node in produced_by:
            jobs.append(produced_by[node]["job"]["name"].rsplit(".", 1)[-1])
            frontier += [_key(i) for i in produced_by[node]["inputs"]]
    assert ("file", str(source)) in seen, seen
    assert {"register", "finetune", "snapshot", "ingest"} <= set(jobs)

    # extra links: rendered by Airflow for each finished task and stored as its `_link_*` XCom
    rendered = airflow_db.extra_links(airflow.env, f"{UC}__", qa_champion["run_ids"])
    run_id = finetune["run"]["facets"]["llmops"]["properties"]["mlflow_run_id"]
    assert rendered[("finetune", "MLflowRunLink")] == f"http://localhost:5000/#/runs/{run_id}"
    assert rendered[("evaluate", "MLflowRunLink")] == f"http://localhost:5000/#/runs/{run_id}"
    assert rendered[("register", "ModelVersionLink")] == f"http://localhost:5000/#/models/{UC}-lora/versions/1"
    assert rendered[("snapshot", "SnapshotManifestLink")] == \
        f"/llmops/use-cases/{UC}/snapshots/{manifest['snapshot_id']}/manifest"
    assert rendered[("validate", "ValidationReportLink")].startswith(f"/llmops/use-cases/{UC}/runs/manual__")
    assert rendered[("validate", "ValidationReportLink")].endswith("/validation")

