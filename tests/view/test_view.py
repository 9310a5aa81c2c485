"""The LLMOps view's data and pages on a real snapshot and a real MLflow registry (SQLite); the app refuses an
anonymous request. The logged-in path runs in the browser test (tests/integration/test_web_ui_browser.py)."""

from __future__ import annotations

import json

import pytest

from llmops import tracking
from llmops.config import SplitConfig, load_by_name
from llmops.data.snapshots.handle import Snapshots
from llmops.data.snapshots.store import store_for
from llmops.runs import record_step
from llmops.view import pages, records


@pytest.fixture
def use_case(use_case_file, fake_adapter, sample_rows):
    use_case_file("view_qa")
    rows = sample_rows.head(60).assign(source_file="qa.jsonl", source_line=range(1, 61))
    snapshots = Snapshots(store_for(load_by_name("view_qa")), split=SplitConfig(eval_fraction=0.2))
    manifest = snapshots.write_frame(rows, source={"kind": "files", "files": ["/data/qa.jsonl"]},
                                     validation={"success": True, "suite": "qa_pairs", "successful": 8, "evaluated": 8})
    record_step("view_qa", "scheduled__2026-01-05", "snapshot", {"snapshot_id": manifest["snapshot_id"]})
    trained = fake_adapter("view_qa", "manual__ft1", register=True, tags={
        "snapshot_id": manifest["snapshot_id"], "dag_run_id": "manual__ft1", "base_model": "org/base",
        "metric.token_f1": "0.31"})
    c = tracking.client()
    c.set_tag(trained.mlflow_run_id, "gate.decision", "PASSED")
    c.set_tag(trained.mlflow_run_id, "gate.reasons", json.dumps(["token_f1 = 0.31 meets >= 0.2"]))
    return manifest


def test_records_read_snapshots_versions_and_the_chain(use_case):
    sid = use_case["snapshot_id"]
    [snap] = records.snapshots(load_by_name("view_qa"))
    assert snap["snapshot_id"] == sid and snap["rows"]["input"] == 60 and snap["validation"]["success"] is True
    assert snap["dag_runs"] == ["scheduled__2026-01-05"]
    [v] = records.versions("view_qa-lora")
    assert v["version"] == "1" and v["aliases"] == ["challenger", "champion"] and v["snapshot_id"] == sid
    assert v["gate"]["decision"] == "PASSED" and v["gate"]["rules"] == ["token_f1 = 0.31 meets >= 0.2"]
    assert v["base_model"] == "org/base" and v["metrics"] == {"token_f1": "0.31"}
    chain = records.chain(load_by_name("view_qa"), "1")
    assert chain["snapshot"]["source"]["files"] == ["/data/qa.jsonl"]
    assert records.chain(load_by_name("view_qa"), "7") is None
    assert records.versions("no-such-model") == []


def test_pages_show_the_snapshot_the_version_and_link_the_dag_runs(use_case):
    sid = use_case["snapshot_id"]
    html = pages.use_case("view_qa", "view_qa-lora", records.snapshots(load_by_name("view_qa")),
                          records.versions("view_qa-lora"))
    assert sid in html and "champion" in html and "token_f1 = 0.31 meets &gt;= 0.2" in html
    assert "href='/dags/view_qa__dataset/runs/scheduled__2026-01-05' target=_top" in html
    assert "href='/dags/view_qa__finetune/runs/manual__ft1' target=_top" in html
    assert "href='/llmops/use-cases/view_qa/versions/1'" in html
    assert f"href='/llmops/use-cases/view_qa/snapshots/{sid}/manifest'" in html
    assert "href='/llmops/use-cases/view_qa'" in pages.index(records.use_cases())
    page = pages.version("view_qa", "view_qa-lora", records.chain(load_by_name("view_qa"), "1"))
    chain = page[page.index("<ol class=chain>"):]
    order = [chain.index(s) for s in ("/data/qa.jsonl", sid, "manual__ft1", "view_qa-lora version 1")]
    assert order == sorted(order)


def test_values_are_escaped():
    html = pages.index([{"name": "x", "description": "<script>alert(1)</script>", "model_name": "m"}])
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_an_anonymous_request_is_refused():
    from fastapi.testclient import TestClient

    from llmops.view.app import create_app

    client = TestClient(create_app())
    for path in ("/use-cases/", "/use-cases/view_qa", "/use-cases/view_qa/snapshots/x/manifest"):
        r = client.get(path)
        assert r.status_code == 401, (path, r.status_code)


def test_a_broken_use_case_file_is_listed_without_hiding_the_others(use_case, tmp_path):
    (tmp_path / "use_cases" / "broken.yaml").write_text("name: broken\ntraining: {epochs: -1}\n")
    found = {u["name"]: u for u in records.use_cases()}
    assert found["view_qa"]["model_name"] == "view_qa-lora"
    assert found["broken"]["description"].startswith("does not load")


def test_crafted_names_are_refused_before_anything_is_read(use_case, monkeypatch):
    """Logged in (the auth dependency replaced by a no-op here; the browser test logs in for real): a name of the
    wrong shape is a 400 naming the field, a well-formed one that does not exist a 404."""
    from fastapi.testclient import TestClient

    from llmops.view import app as view_app

    monkeypatch.setattr(view_app, "_authenticated", lambda: (lambda: None))
    client = TestClient(view_app.create_app())
    sid = use_case["snapshot_id"]
    assert client.get(f"/use-cases/view_qa/snapshots/{sid}/manifest").json()["snapshot_id"] == sid
    for path, field in ((f"/use-cases/View..QA/snapshots/{sid}/manifest", "use case"),
                        ("/use-cases/view_qa/snapshots/..%5C..%5Cetc/manifest", "snapshot_id"),
                        ("/use-cases/view_qa/snapshots/...../manifest", "snapshot_id"),
                        ("/use-cases/view_qa/snapshots/" + "a" * 300 + "/manifest", "snapshot_id"),
                        ("/use-cases/view_qa/versions/-1", "version"),
                        ("/use-cases/view_qa/versions/latest", "version")):
        r = client.get(path)
        assert r.status_code == 400 and r.json()["detail"].startswith(f"{field}:"), (path, r.status_code, r.text)
    assert client.get("/use-cases/view_qa/snapshots/0123456789abcdef/manifest").status_code == 404
    assert client.get("/use-cases/view_qa/versions/7").status_code == 404
    assert client.get("/use-cases/no_such_case").status_code == 404
